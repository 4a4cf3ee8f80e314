// SPDX-License-Identifier: GPL-2.0
/*
 * Test-only mediated-device parent that imitates NVIDIA's vGPU sysfs, for pve-vgpu-hook's
 * end-to-end tests on a real kernel (6.1 mdev API). Binds QEMU's pci-testdev devices with a
 * PCI driver named "nvidia", so the type directories are nvidia-46, nvidia-47, ... exactly as
 * on a real host, with NVIDIA-style names and descriptions.
 *
 * available_instances follows a rule per physical device, and probe refuses (-ENOSPC) what is
 * not available, which is then the errno of the write to `create`:
 *   rule=equal-size (default): only types with the framebuffer of what the GPU hosts
 *   rule=homogeneous: only the type the GPU hosts
 *
 * iface_after=N: the devices probed after the first N imitate NVIDIA's vendor-specific vGPU
 * interface (kernel 6.8 and later) instead of being mdev parents: nvidia/creatable_vgpu_types
 * lists L40S types while no type is set, nvidia/current_vgpu_type takes a type id (EBUSY when
 * one is set already, EINVAL when not creatable) or 0 to reset it.
 *
 * Each vGPU has nvidia/vgpu_params (plugin parameters, "k=v,k=v"; a single space clears them),
 * which, as NVIDIA's driver does, takes writes only while no one has the device open (EBUSY
 * once QEMU, here tests/kernel/guest/vfioopen, opened it through VFIO).
 */
#include <linux/mdev.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include <linux/vfio.h>

static char *rule = "equal-size";
module_param(rule, charp, 0444);
MODULE_PARM_DESC(rule, "allocation rule: equal-size (default) or homogeneous");

static unsigned int iface_after = ~0u;
module_param(iface_after, uint, 0444);
MODULE_PARM_DESC(iface_after, "devices probed after this many use the vendor interface");
static unsigned int probed;
static struct pci_dev *vf_devs[8]; /* the devices that use the vendor interface */

/* ---- NVIDIA's vendor-specific interface (a VF with nvidia/ files) ---- */

struct iface_type {
	unsigned int id;
	const char *name;
};

static const struct iface_type iface_types[] = {
	{ 1, "NVIDIA L40S-2Q" }, { 2, "NVIDIA L40S-4Q" }, { 3, "NVIDIA L40S-8Q" },
};

struct fake_vf {
	struct mutex lock;
	unsigned int current_type;
};

static ssize_t creatable_vgpu_types_show(struct device *dev, struct device_attribute *attr,
					 char *buf)
{
	struct fake_vf *vf = dev_get_drvdata(dev);
	ssize_t n = sysfs_emit(buf, "ID    : vGPU Name\n");
	unsigned int i;

	mutex_lock(&vf->lock);
	for (i = 0; !vf->current_type && i < ARRAY_SIZE(iface_types); i++)
		n += sysfs_emit_at(buf, n, "%u    : %s\n", iface_types[i].id, iface_types[i].name);
	mutex_unlock(&vf->lock);
	return n;
}

static ssize_t current_vgpu_type_show(struct device *dev, struct device_attribute *attr,
				      char *buf)
{
	struct fake_vf *vf = dev_get_drvdata(dev);

	return sysfs_emit(buf, "%u\n", vf->current_type);
}

static ssize_t current_vgpu_type_store(struct device *dev, struct device_attribute *attr,
				       const char *buf, size_t count)
{
	struct fake_vf *vf = dev_get_drvdata(dev);
	unsigned int id, i;
	ssize_t ret = count;

	if (kstrtouint(buf, 10, &id))
		return -EINVAL;
	mutex_lock(&vf->lock);
	if (id && vf->current_type) {
		ret = -EBUSY;
	} else if (id) {
		ret = -EINVAL;
		for (i = 0; i < ARRAY_SIZE(iface_types); i++)
			if (iface_types[i].id == id)
				ret = count;
	}
	if (ret > 0)
		vf->current_type = id;
	mutex_unlock(&vf->lock);
	return ret;
}

static DEVICE_ATTR_RO(creatable_vgpu_types);
static DEVICE_ATTR_RW(current_vgpu_type);

static struct attribute *iface_attrs[] = {
	&dev_attr_creatable_vgpu_types.attr,
	&dev_attr_current_vgpu_type.attr,
	NULL,
};

static const struct attribute_group iface_group = {
	.name = "nvidia",
	.attrs = iface_attrs,
};

struct p40_type {
	const char *id;
	const char *name;
	unsigned int fb_mib;
	unsigned int max;
};

static const struct p40_type p40_types[] = {
	{ "46", "GRID P40-1Q", 1024, 24 },   { "47", "GRID P40-2Q", 2048, 12 },
	{ "48", "GRID P40-3Q", 3072, 8 },    { "49", "GRID P40-4Q", 4096, 6 },
	{ "50", "GRID P40-6Q", 6144, 4 },    { "51", "GRID P40-8Q", 8192, 3 },
	{ "52", "GRID P40-12Q", 12288, 2 },  { "53", "GRID P40-24Q", 24576, 1 },
	{ "155", "GRID P40-1B", 1024, 24 },  { "156", "GRID P40-2B", 2048, 12 },
	{ "283", "GRID P40-4C", 4096, 6 },   { "284", "GRID P40-6C", 6144, 4 },
};
#define NTYPES ARRAY_SIZE(p40_types)

struct fake_gpu {
	struct mdev_parent parent;
	struct mdev_type types[NTYPES];
	struct mdev_type *type_ptrs[NTYPES];
	struct mutex lock;
	unsigned int active[NTYPES];
};

struct fake_vgpu {
	struct vfio_device vdev;
	struct fake_gpu *gpu;
	unsigned int type;
	struct mutex lock; /* open and params */
	bool open;
	char params[256];
};

static struct fake_gpu *gpu_of(struct mdev_type *mtype)
{
	return container_of(mtype->parent, struct fake_gpu, parent);
}

static unsigned int available_locked(struct fake_gpu *g, unsigned int t)
{
	bool homogeneous = !strcmp(rule, "homogeneous");
	unsigned int total = 0, i;

	for (i = 0; i < NTYPES; i++)
		total += g->active[i];
	for (i = 0; i < NTYPES; i++) {
		if (!g->active[i])
			continue;
		if (homogeneous ? i != t : p40_types[i].fb_mib != p40_types[t].fb_mib)
			return 0;
	}
	return total < p40_types[t].max ? p40_types[t].max - total : 0;
}

static unsigned int fake_get_available(struct mdev_type *mtype)
{
	struct fake_gpu *g = gpu_of(mtype);
	unsigned int n;

	mutex_lock(&g->lock);
	n = available_locked(g, mtype - g->types);
	mutex_unlock(&g->lock);
	return n;
}

static ssize_t fake_show_description(struct mdev_type *mtype, char *buf)
{
	const struct p40_type *t = &p40_types[mtype - gpu_of(mtype)->types];

	return sysfs_emit(buf, "num_heads=4, frl_config=60, framebuffer=%uM, "
			       "max_resolution=5120x2880, max_instance=%u\n",
			  t->fb_mib, t->max);
}

static void fake_vgpu_release(struct vfio_device *vdev)
{
	vfio_free_device(vdev);
}

static int fake_vgpu_open(struct vfio_device *vdev)
{
	struct fake_vgpu *v = container_of(vdev, struct fake_vgpu, vdev);

	mutex_lock(&v->lock);
	v->open = true;
	mutex_unlock(&v->lock);
	return 0;
}

static void fake_vgpu_close(struct vfio_device *vdev)
{
	struct fake_vgpu *v = container_of(vdev, struct fake_vgpu, vdev);

	mutex_lock(&v->lock);
	v->open = false;
	mutex_unlock(&v->lock);
}

static const struct vfio_device_ops fake_vgpu_ops = {
	.name = "nvidia-test-vgpu",
	.release = fake_vgpu_release,
	.open_device = fake_vgpu_open,
	.close_device = fake_vgpu_close,
};

static ssize_t vgpu_params_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	struct fake_vgpu *v = dev_get_drvdata(dev);
	ssize_t n;

	mutex_lock(&v->lock);
	n = sysfs_emit(buf, "%s\n", v->params);
	mutex_unlock(&v->lock);
	return n;
}

static ssize_t vgpu_params_store(struct device *dev, struct device_attribute *attr,
				 const char *buf, size_t count)
{
	struct fake_vgpu *v = dev_get_drvdata(dev);
	size_t len = count;
	ssize_t ret = count;

	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		len--;
	if (len >= sizeof(v->params))
		return -EINVAL;
	mutex_lock(&v->lock);
	if (v->open) {
		ret = -EBUSY; /* the driver keeps parameters only while the device is unused */
	} else {
		memcpy(v->params, buf, len);
		v->params[len] = '\0';
	}
	mutex_unlock(&v->lock);
	return ret;
}
static DEVICE_ATTR_RW(vgpu_params);

static struct attribute *vgpu_attrs[] = {
	&dev_attr_vgpu_params.attr,
	NULL,
};

static const struct attribute_group vgpu_group = {
	.name = "nvidia",
	.attrs = vgpu_attrs,
};

static const struct attribute_group *vgpu_groups[] = {
	&vgpu_group,
	NULL,
};

static int fake_probe(struct mdev_device *mdev)
{
	struct fake_gpu *g = gpu_of(mdev->type);
	unsigned int t = mdev->type - g->types;
	struct fake_vgpu *v;
	int ret;

	mutex_lock(&g->lock);
	if (!available_locked(g, t)) {
		mutex_unlock(&g->lock);
		return -ENOSPC; /* what NVIDIA's driver does is not confirmed; ours refuses so */
	}
	g->active[t]++;
	mutex_unlock(&g->lock);

	v = vfio_alloc_device(fake_vgpu, vdev, &mdev->dev, &fake_vgpu_ops);
	if (IS_ERR(v)) {
		ret = PTR_ERR(v);
		goto undo;
	}
	v->gpu = g;
	v->type = t;
	mutex_init(&v->lock);
	ret = vfio_register_emulated_iommu_dev(&v->vdev);
	if (ret) {
		vfio_put_device(&v->vdev);
		goto undo;
	}
	dev_set_drvdata(&mdev->dev, v);
	return 0;
undo:
	mutex_lock(&g->lock);
	g->active[t]--;
	mutex_unlock(&g->lock);
	return ret;
}

static void fake_remove(struct mdev_device *mdev)
{
	struct fake_vgpu *v = dev_get_drvdata(&mdev->dev);
	struct fake_gpu *g = v->gpu;

	vfio_unregister_group_dev(&v->vdev);
	mutex_lock(&g->lock);
	g->active[v->type]--;
	mutex_unlock(&g->lock);
	vfio_put_device(&v->vdev);
}

static struct mdev_driver fake_mdev_driver = {
	.device_api = VFIO_DEVICE_API_PCI_STRING,
	.driver = {
		.name = "nvidia_test_vgpu",
		.owner = THIS_MODULE,
		.mod_name = KBUILD_MODNAME,
		.dev_groups = vgpu_groups,
	},
	.probe = fake_probe,
	.remove = fake_remove,
	.get_available = fake_get_available,
	.show_description = fake_show_description,
};

static int fake_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct fake_gpu *g;
	unsigned int i;
	int ret;

	if (probed++ >= iface_after) {
		struct fake_vf *vf = kzalloc(sizeof(*vf), GFP_KERNEL);

		if (!vf)
			return -ENOMEM;
		mutex_init(&vf->lock);
		pci_set_drvdata(pdev, vf);
		ret = sysfs_create_group(&pdev->dev.kobj, &iface_group);
		if (ret) {
			kfree(vf);
			return ret;
		}
		for (i = 0; i < ARRAY_SIZE(vf_devs); i++) {
			if (!vf_devs[i]) {
				vf_devs[i] = pdev;
				break;
			}
		}
		return 0;
	}
	g = kzalloc(sizeof(*g), GFP_KERNEL);
	if (!g)
		return -ENOMEM;
	mutex_init(&g->lock);
	for (i = 0; i < NTYPES; i++) {
		g->types[i].sysfs_name = p40_types[i].id;
		g->types[i].pretty_name = p40_types[i].name;
		g->type_ptrs[i] = &g->types[i];
	}
	ret = mdev_register_parent(&g->parent, &pdev->dev, &fake_mdev_driver, g->type_ptrs,
				   NTYPES);
	if (ret) {
		kfree(g);
		return ret;
	}
	pci_set_drvdata(pdev, g);
	return 0;
}

static void fake_pci_remove(struct pci_dev *pdev)
{
	struct fake_gpu *g = pci_get_drvdata(pdev);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(vf_devs); i++) {
		if (vf_devs[i] == pdev) {
			vf_devs[i] = NULL;
			sysfs_remove_group(&pdev->dev.kobj, &iface_group);
			kfree(pci_get_drvdata(pdev)); /* a struct fake_vf */
			return;
		}
	}
	mdev_unregister_parent(&g->parent);
	kfree(g);
}

static const struct pci_device_id fake_pci_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT, 0x0005) }, /* QEMU pci-testdev */
	{}
};
MODULE_DEVICE_TABLE(pci, fake_pci_ids);

static struct pci_driver fake_pci_driver = {
	.name = "nvidia", /* type dirs are "<driver>-<id>": nvidia-46 */
	.id_table = fake_pci_ids,
	.probe = fake_pci_probe,
	.remove = fake_pci_remove,
};

static int __init fake_init(void)
{
	int ret = mdev_register_driver(&fake_mdev_driver);

	probed = 0;
	if (ret)
		return ret;
	ret = pci_register_driver(&fake_pci_driver);
	if (ret)
		mdev_unregister_driver(&fake_mdev_driver);
	return ret;
}

static void __exit fake_exit(void)
{
	pci_unregister_driver(&fake_pci_driver);
	mdev_unregister_driver(&fake_mdev_driver);
}

module_init(fake_init);
module_exit(fake_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Test-only NVIDIA-like mdev parent for pve-vgpu-hook");
