#include "cli.h"

#include "admin.h"
#include "bootcheck.h"
#include "cluster.h"
#include "clusterview.h"
#include "config.h"
#include "debver.h"
#include "hook.h"
#include "hostfs.h"
#include "inventory.h"
#include "log.h"
#include "managed.h"
#include "mdev_uuid.h"
#include "pveconf.h"
#include "qemu_server.h"
#include "readiness.h"
#include "report.h"
#include "setup.h"

#include "cleanup.h"
#include "hostpaths.h"
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2

struct cli_ctx {
    struct hostfs fs;
    struct hostfs real_fs; /* this machine's "/", for --config FILE */
    const char *root;
    const char *config_path;
    char config_abs[PATH_MAX]; /* config_path made absolute */
    bool root_from_env, config_from_env;
};

struct command {
    const char *name;
    int (*run)(struct cli_ctx *ctx, int argc, char **argv);
    const char *usage;
    const char *summary;
    const char *help;
};

/* stdout for text output, with control bytes escaped (names and descriptions come from sysfs
 * and configs); JSON output escapes them itself. */
static ssize_t escaping_write(void *cookie, const char *buf, size_t size) {
    (void)cookie;
    _cleanup_free_ char *esc = str_escape_ctl(buf, size, true);
    if (!esc) {
        errno = ENOMEM;
        return -1;
    }
    size_t len = strlen(esc);
    if (fwrite(esc, 1, len, stdout) != len) {
        return -1;
    }
    return (ssize_t)size;
}

static FILE *text_out(void) {
    static FILE *out;
    if (!out) {
        cookie_io_functions_t io = {.write = escaping_write};
        out = fopencookie(NULL, "w", io);
    }
    return out ? out : stdout;
}

static int cmd_types(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_status(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_check(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_cleanup(struct cli_ctx *ctx, int argc, char **argv);
/* --gpu PCI or NODE:PCI into the request; the same GPU twice (06:00.0 and 0000:06:00.0) is
 * stored once. -EINVAL: neither; -ENXIO: a PCI id after a name that is no node name. A node
 * name holds no ':', a PCI id does: the whole argument is a PCI id first, else the part before
 * the first ':' is the node. */
static int attach_gpu_arg(const char *arg, struct attach_request *req) {
    char *pci = req->gpus[req->ngpus], *node = req->gpu_nodes[req->ngpus];
    node[0] = '\0';
    if (pci_id_normalize(arg, pci, sizeof(req->gpus[0])) < 0) {
        size_t n = strcspn(arg, ":");
        if (!arg[n] || n >= sizeof(req->gpu_nodes[0]) ||
            pci_id_normalize(arg + n + 1, pci, sizeof(req->gpus[0])) < 0) {
            return -EINVAL;
        }
        snprintf(node, sizeof(req->gpu_nodes[0]), "%.*s", (int)n, arg);
        if (!node_name_valid(node)) {
            return -ENXIO;
        }
    }
    bool again = false;
    for (size_t g = 0; g < req->ngpus && !again; g++) {
        again = !strcmp(req->gpus[g], pci) && !strcmp(req->gpu_nodes[g], node);
    }
    req->ngpus += !again;
    return 0;
}

static int cmd_attach(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_detach(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_setup(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_doctor(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_tune(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_config(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_metrics(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_diagnose(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_where(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_publish(struct cli_ctx *ctx, int argc, char **argv);
static int cmd_ha_sync(struct cli_ctx *ctx, int argc, char **argv);

/* The options attach, detach, tune and setup share: one result, said as text or JSON. */
#define EDIT_OPTS_HELP                                                                             \
    "  --dry-run       say what would change (each file: create, modify or remove) and write\n"    \
    "                  nothing, not even a lock file; the same checks and refusals\n"              \
    "  --json          one object {vmid, dry_run, result, pending, message, changes [{file,\n"     \
    "                  action}], details, warnings [{code, message}], error {code, message,\n"     \
    "                  hint}}; a refusal is result \"refused\" with the error, exit 1 as in "      \
    "text\n"

static const struct command commands[] = {
    {"types", cmd_types, "types [--parent PCI] [--json | --dumpjson]",
     "vGPU types per GPU with friendly names, and what fits now",
     "Lists, per physical GPU (SR-IOV virtual functions collapsed under their physical\n"
     "function), every mdev type: its sysfs id (what hostpciN's mdev= wants), friendly name,\n"
     "series, framebuffer, max instances, instances available now, and whether it fits now\n"
     "under the allocation policy. --parent limits the list to one GPU or VF.\n"
     "--json prints, per parent and type, the keys of 'mdevctl types --dumpjson'\n"
     "(available_instances, device_api, name, description) plus short_name, series,\n"
     "framebuffer_mib, max_instance, mig_backed, physical_gpu and fits.\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook types\n"
     "  pve-vgpu-hook types --parent 0000:06:00.0 --json\n"},
    {"status", cmd_status, "status [--cluster] [--json]", "which GPU hosts what, and leftovers",
     "Shows, per physical GPU, what it is locked to by the policy, an occupancy bar and each\n"
     "mdev with its type, the VM that owns it (from the UUID) and whether that VM runs\n"
     "('leftover' when not). Also lists running VMs whose vGPU is missing, and stale records:\n"
     "settings of a VM that is gone or whose VMID a new VM got (see 'help config', vms). It\n"
     "also publishes this node's inventory for the cluster view (see 'help publish'), and\n"
     "says so on stderr when it cannot (pmxcfs without quorum).\n"
     "  --cluster  every node of the cluster instead, from the inventories the nodes publish\n"
     "             to /etc/pve/nodes/NODE/vgpu-hook.json: their GPUs, the vGPUs they host and\n"
     "             what is free by type, with the age of each node's data. A node whose data\n"
     "             is older than 15 minutes, or that /etc/pve/.members lists as offline, is\n"
     "             shown as STALE: what it hosts may have changed since. After the nodes:\n"
     "             the HA-managed vGPU VMs HA may recover or relocate to a node that cannot\n"
     "             start them (ha-nodes: no ha-sync rule or one out of step; ha-no-node: no\n"
     "             node can), each with its fix, as doctor does (JSON: ha, empty without HA;\n"
     "             when HA runs but ha-sync cannot tell, why: ha_unknown).\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook status\n"
     "  pve-vgpu-hook status --cluster --json\n"},
    {"where", cmd_where, "where VMID [--migrate] [--json]",
     "which nodes of the cluster could start a VM now, or take it live",
     "For each node of the cluster: would this VM's pre-start there place its vGPUs now, and\n"
     "on which GPU. It runs the same placement as pre-start over the inventory the node\n"
     "published, and also needs the VM's resource mapping to list the node, qemu-server\n"
     "there to use the GPU's kind (NVIDIA's vendor interface: " QSRV_VENDOR_IFACE_SINCE
     " or later) and,\n"
     "when the VM has vgpu_unlock-rs settings, vgpu_unlock-rs there. A node that cannot is\n"
     "named with a code (not-offered, no-room, not-mapped, qemu-server-old, no-vgpu-unlock,\n"
     "stale, offline, unpublished, invalid) and why. Exit 0 when at least one node can, 1\n"
     "when none can. Changes nothing.\n"
     "  --migrate  instead: could the VM, running on its node, live-migrate there now? Also\n"
     "             needs its resource mapping to list the node (not-mapped), the same NVIDIA\n"
     "             driver version as the VM's node (driver-mismatch: a vGPU migrates only\n"
     "             between equal drivers), the mapping marked live-migration-capable\n"
     "             (not-live-capable: attach --live-migration) and qemu-server 8.3.9 or later\n"
     "             there (qemu-server-old); the VM's own node is current-node. The type is\n"
     "             the one its hostpci line names: a migration target never creates another.\n"
     "--json: {vmid, node (the VM's), migrate, nodes [{node, can_start, code, message,\n"
     "devices}]}.\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook where 101\n"
     "  pve-vgpu-hook where 101 --migrate --json\n"},
    {"publish", cmd_publish, "publish", "write this node's vGPU inventory for the cluster view",
     "Writes this node's inventory (GPUs, types with what is free, hosted vGPUs, NVIDIA\n"
     "driver and qemu-server versions, whether vgpu_unlock-rs is set up) to\n"
     "/etc/pve/nodes/NODE/vgpu-hook.json, atomically, and only when it changed or is older\n"
     "than 5 minutes: pmxcfs copies every write to every node. post-start (of a VM with an\n"
     "mdev of ours), post-stop, status and types publish too; the package's "
     "pve-vgpu-hook-publish.timer (enabled) runs this\n"
     "at boot and every 3 minutes. It also keeps this node's 'map' lines in every resource\n"
     "mapping attach made (vgpu-hook-VMID in /etc/pve/mapping/pci.cfg): the devices here that\n"
     "offer the VM's type, or none, so that Proxmox does not report this node as missing the\n"
     "mapping (and refuse to migrate the VM here); written only when this node's devices\n"
     "changed, other sections byte for byte. Without quorum pmxcfs refuses the write: exit 1,\n"
     "and nothing else is affected. With \"ha_rules\": true in the settings it then runs ha-sync\n"
     "too, so the timer keeps the HA rules in step.\n"
     "\n"
     "Example:\n"
     "  pve-vgpu-hook publish\n"},
    {"ha-sync", cmd_ha_sync, "ha-sync [--dry-run] [--json]",
     "keep HA from moving vGPU VMs to nodes that cannot start them",
     "HA knows nothing of vGPUs: it recovers or relocates a VM to any node, where pre-start\n"
     "may refuse it, and gives up after max_relocate. For every HA-managed VM\n"
     "(/etc/pve/ha/resources.cfg) with a vGPU (hostpciN ...,mdev=, or attached) ha-sync keeps\n"
     "a strict HA rule vgpu-hook-VMID naming the nodes that can start it: where 'where VMID'\n"
     "says it could start now (type offered, room, mapping, qemu-server), plus nodes whose\n"
     "data is stale or that are offline but offered its type when last seen (what they have\n"
     "now is unknown, and dropping a node makes HA move a VM away from it), plus the VM's own\n"
     "node while its inventory cannot tell (unpublished, refused, stale): a strict rule\n"
     "without it makes HA move the VM away at once; the message says so and how to publish.\n"
     "  pve-ha-manager " HA_MANAGER_RULES_VERSION " and later, once Proxmox has migrated the HA\n"
     "      groups to rules (groups.cfg has no group): a node-affinity rule (strict 1) in\n"
     "      /etc/pve/ha/rules.cfg. A VM already in another node-affinity rule is skipped:\n"
     "      Proxmox ignores both rules of a resource named twice.\n"
     "  otherwise (what Proxmox's own API allows then, even on a mixed-version cluster): a\n"
     "      restricted HA group in /etc/pve/ha/groups.cfg. The first line says which and why\n"
     "      (JSON: form_reason rules, ha-manager-old, groups-not-migrated). ha-sync never edits\n"
     "      resources.cfg (Proxmox's, with the admin's choices): it prints the command that\n"
     "      puts the VM into the group (ha-manager set vm:VMID --group vgpu-hook-VMID).\n"
     "Only sections named vgpu-hook-VMID AND carrying ha-sync's comment are ever changed;\n"
     "when Proxmox migrates groups to rules, ours becomes ha-group-vgpu-hook-VMID with our\n"
     "comment, which ha-sync renames back in place (one rule per VM, never two) unless\n"
     "other resources joined the group;\n"
     "everything else in the file stays byte for byte. A VM that is no HA resource any more,\n"
     "or has no vGPU any more, loses its rule. A VM no node can start keeps its rule as it\n"
     "was (exit 1). The file is written atomically under pmxcfs' HA lock (the one\n"
     "ha-manager takes), and only when it changes. Without quorum nothing is written (exit\n"
     "1). With \"ha_rules\": true in the settings the publish timer runs it every 3 minutes.\n"
     "--dry-run only says what it would do.\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook ha-sync --dry-run\n"
     "  pve-vgpu-hook ha-sync\n"},
    {"check", cmd_check, "check VMID [--json] | check --all [--json]",
     "dry run of a VM's pre-start, or of the node's next boot",
     "Dry run of pre-start: shows which mdev would be created where, or why the start would be\n"
     "refused, and whether pre-start would have to add -uuid to the VM's args. Changes nothing.\n"
     "Exit status 0 when the VM would start, 1 when not.\n"
     "\n"
     "--all: will every onboot vGPU VM of this node come up after a reboot? Simulates the\n"
     "boot: an empty host (no vGPU of any VM, every GPU idle, every VF free), then this\n"
     "node's VMs with onboot: 1 in Proxmox's boot order (startup: order=N ascending, VMs\n"
     "without an order after the others, ties by VMID), each placed as pre-start would\n"
     "place it, the vGPUs of the VMs before it taking their room. Templates are skipped;\n"
     "HA-managed VMs (/etc/pve/ha/resources.cfg) are started by HA, not onboot: listed, not\n"
     "simulated. VMs without a vGPU are not listed. Per VM: where each vGPU goes, or the\n"
     "refusal check VMID would give. Exit status 0 when all would start, 1 otherwise; the\n"
     "text ends naming the VMs that would not, and why.\n"
     "\n"
     "It also names mistakes that would cost a start, each with the fix to run:\n"
     "  mdev=P40-1Q     a type name where Proxmox needs the sysfs id (mdev=nvidia-46):\n"
     "                  refused here and by pre-start (names are fine for attach --type)\n"
     "  no hookscript   or one that does not exist or is not pve-vgpu-hook: the hook never\n"
     "                  runs (qm set VMID --hookscript local:snippets/pve-vgpu-hook)\n"
     "  x-vga=1         on a vGPU: the VM's console stays black\n"
     "  SeaBIOS + q35   newer than 7.2: NVIDIA's guest driver fails to license\n"
     "                  (qm set VMID --bios ovmf, or --machine pc-q35-7.2)\n"
     "  clones          another vGPU VM's smbios1 uuid, or args -uuid with another VM's UUID\n"
     "Warnings go to stderr (pre-start: one line each; they never stop a start); --json\n"
     "gives them as {code, message} (codes: no-hookscript, hookscript-missing,\n"
     "hookscript-not-ours, x-vga-console, seabios-q35-licensing, cloned-smbios-uuid,\n"
     "cloned-args-uuid; 'warning' for others) and a refusal's error with its code\n"
     "(mdev-type-name, else refused).\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook check 100\n"
     "  pve-vgpu-hook check --all\n"},
    {"cleanup", cmd_cleanup, "cleanup [--dry-run] [--json]", "remove leftover mdevs of stopped VMs",
     "Removes mdevs whose UUID names a VM (%08d-0000-0000-0000-%012d) that is not running and\n"
     "not being started or stopped; Proxmox skips post-stop on some paths (migration source,\n"
     "failed starts, lock timeouts). Devices of running VMs and mdevs with other UUIDs are never\n"
     "touched. VF types left set on NVIDIA's vendor interface are reset the same way (never\n"
     "one a running QEMU uses, or one a starting or stopping VM names). One line per device.\n"
     "It also removes stale records from the settings (vms.<vmid> of a VM that exists on no\n"
     "node, or whose VMID a new VM got), under the cluster lock, and nothing else of them, and\n"
     "the resource mappings attach made that no VM needs (vgpu-hook-VMID of a VM that exists\n"
     "on no node, or that no record names and the VM's config does not use).\n"
     "--dry-run only says what it would do.\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook cleanup --dry-run\n"
     "  pve-vgpu-hook cleanup\n"},
    {"attach", cmd_attach,
     "attach VMID [--type TYPE] [--gpu [NODE:]PCI]... [--index N] [--hookscript VOLID] "
     "[--[no-]live-migration] [--dry-run] [--json]",
     "give a VM a vGPU placed automatically at every start",
     "Managed mode: the VM names a vGPU type instead of a PCI address, and pre-start puts it on\n"
     "a GPU where it fits at every start (after a reboot, on another node after HA or a\n"
     "migration, when one GPU is full). attach records the VM in /etc/pve/vgpu-hook.json and,\n"
     "under the VM's lock like 'qm set', sets the hookscript (default local:snippets/\n"
     "pve-vgpu-hook) and, on qemu-server 8.0.4 and later, a vGPU Proxmox sees (Hardware view,\n"
     "migration check):\n"
     "  hostpciN: mapping=vgpu-hook-<vmid>,mdev=<type id>   (N: --index, else the first free)\n"
     "with that resource mapping in /etc/pve/mapping/pci.cfg: one 'map' line per candidate\n"
     "device of this node with its PCI ids (a P40 itself, an SR-IOV A40's VFs, the VFs of\n"
     "NVIDIA's vendor interface, which needs 8.2.5). Each pre-start rewrites the node's lines\n"
     "in placement order before Proxmox reads them (every node adds its lines when it publishes):\n"
     "on mdev GPUs it creates the vGPU first and lists its GPU first, and Proxmox adopts it; on\n"
     "the vendor interface Proxmox takes the first VF that can. An admin's mapping is never\n"
     "changed. Before 8.0.4 (mdev GPUs only) attach adds to args instead\n"
     "  -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/<uuid> -uuid <uuid>\n"
     "  --type TYPE     sysfs id (nvidia-47), full name ('GRID P40-2Q') or short name (P40-2Q);\n"
     "                  without it, the type the VM is attached with\n"
     "  --gpu [NODE:]PCI  candidate GPU, on this node or on NODE of the cluster (as that\n"
     "                  node published it); repeat for more; default: every GPU that offers\n"
     "                  the type. Stored per node, so each node can have its own list.\n"
     "  --index N       hostpciN, and the N in the UUID %08d-0000-0000-0000-%012d (0 to 15)\n"
     "  --hookscript V  the VM's hookscript volume; a VM with another hookscript is refused,\n"
     "                  since Proxmox runs one per VM (call pve-vgpu-hook from yours "
     "instead)\n"
     "  --live-migration  mark the VM's mapping live-migration-capable (qemu-server 8.3.9 and\n"
     "                  later; not for the args form), so Proxmox live-migrates the running VM;\n"
     "                  kept by later attaches; --no-live-migration clears it. The vGPU needs\n"
     "                  NVIDIA's migration support and the same driver on both nodes ('where\n"
     "                  VMID --migrate' checks the nodes)\n" EDIT_OPTS_HELP
     "A VM with a hostpciN ...,mdev= entry is refused: a VM uses one mode. So is a type no\n"
     "node offers (with the nearest names this node does offer) and a --gpu that does not\n"
     "exist or offer it (with the GPUs that do): such a VM could not start. A type only other\n"
     "nodes offer (in their published inventories) is accepted, with a warning naming them:\n"
     "the VM starts there ('where VMID' says where it can now); its mapping lists their mdev\n"
     "parents or, on NVIDIA's vendor interface, their VFs, chosen as each node chooses its own,\n"
     "from the PCI ids they published. When none of them published those (an older\n"
     "pve-vgpu-hook there), mdev types get the args form and the message says why; a\n"
     "vendor-interface type is refused (upgrade pve-vgpu-hook there and let it publish, or\n"
     "attach on that node). Another -uuid in\n"
     "args is replaced (QEMU takes one; a warning names it, detach puts it back). Run attach\n"
     "again to change the type or GPUs, or to restore what it wrote after a hand edit; on a VM\n"
     "attached through args it converts it to the mapping form where qemu-server can (on a\n"
     "running VM as [PENDING]: the mapping takes effect at its next start).\n"
     "The files change all or nothing; if one cannot be written and the ones before it not\n"
     "put back, the message says so, and running the same command again completes it.\n"
     "'detach' undoes it exactly. On a running VM, args and hostpciN change in the [PENDING]\n"
     "section of its config, as 'qm set' puts what it cannot hot-plug (a removal in\n"
     "'delete:'); the hookscript line changes at once (Proxmox hot-plugs it). The change takes\n"
     "effect when the VM is stopped and started; 'qm config VMID --current' shows the running\n"
     "config, 'check VMID' the next start.\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook attach 100 --type P40-2Q --dry-run\n"
     "  pve-vgpu-hook attach 100 --type P40-2Q\n"
     "  pve-vgpu-hook attach 101 --type 'GRID P40-1Q' --gpu 0000:06:00.0 --gpu 0000:07:00.0\n"
     "  pve-vgpu-hook attach 102 --type P40-2Q --gpu 0000:06:00.0 --gpu pve2:0000:81:00.0\n"
     "  pve-vgpu-hook attach 200 --type L40S-2Q      (vendor interface: through a mapping)\n"
     "  pve-vgpu-hook attach 100                     (again: args form to mapping form)\n"},
    {"detach", cmd_detach, "detach VMID [--dry-run] [--json]", "undo attach",
     "Removes what attach added to the VM config (args, or the hostpciN line and its resource\n"
     "mapping, and the hookscript when attach set it) and the VM's entry in\n"
     "/etc/pve/vgpu-hook.json. A running VM keeps its vGPU until it stops.\n" EDIT_OPTS_HELP "\n"
     "Examples:\n"
     "  pve-vgpu-hook detach 100 --dry-run\n"
     "  pve-vgpu-hook detach 100\n"},
    {"tune", cmd_tune,
     "tune VMID [--param K=V]... [--unlock K=V]... [--clear [KEY]...] [--dry-run] [--json]",
     "per-VM vGPU settings: NVIDIA plugin parameters, vgpu_unlock overrides",
     "Stores settings for the VM's vGPUs in /etc/pve/vgpu-hook.json (vms.<vmid>: cluster-wide,\n"
     "under pmxcfs' lock and the VM's lock, like qm set); every pre-start applies them on the\n"
     "node the VM starts on, after its vGPUs exist and before QEMU opens them. Either mode.\n"
     "  --param K=V    NVIDIA plugin parameter, written to each vGPU's nvidia/vgpu_params as\n"
     "                 K=V,K=V: frame_rate_limiter=0 (no 60 fps limit), disable_vnc=1,\n"
     "                 enable_uvm=1 (CUDA unified memory), enable_debugging=1,\n"
     "                 enable_profiling=1: each 0 or 1 (the plugin reads integers; 'off' is\n"
     "                 refused). Other keys go to the driver, with a warning.\n"
     "  --unlock K=V   vgpu_unlock-rs override, rendered into the [vm.<vmid>] table of this\n"
     "                 node's /etc/vgpu_unlock/profile_override.toml (every other byte of it\n"
     "                 stays; an admin's own [vm.<vmid>] is never overwritten):\n"
     "                 frl_enabled (0/1), framebuffer, mappable_video_size,\n"
     "                 framebuffer_reservation (bytes, or 896MiB, 1GiB, 2GB...), num_displays,\n"
     "                 display_width, display_height, max_pixels, frl_config, max_instances,\n"
     "                 cuda_enabled, ecc_supported, multi_vgpu_supported (0/1), gpu_type,\n"
     "                 mig_instance_size, encoder_capacity, pci_id, pci_device_id,\n"
     "                 bar1_length (integers), card_name, vgpu_type (31 bytes; 63 from driver\n"
     "                 R580), adapter_name, short_gpu_name (63), features, license_type (127).\n"
     "                 Unknown keys and wrong types are refused (vgpu_unlock-rs would ignore\n"
     "                 or fail them), and so is --unlock on a node without vgpu_unlock-rs\n"
     "                 (the VM would not start there). An admin's [vm.<vmid>] of a VM without\n"
     "                 unlock settings is left alone.\n"
     "  --clear [KEY]  remove every setting, or the KEYs named after the VMID\n" EDIT_OPTS_HELP
     "                  (tune's adds tuning {params, unlock}: the VM's settings after it)\n"
     "Without options it shows the VM's settings (--json: result \"shown\"). A VMID without a VM "
     "on this node is\n"
     "refused, as by attach and detach. A start is refused when the driver refuses\n"
     "vgpu_params (the device is already open), when profile_override.toml is malformed (with\n"
     "its line and column), or when the VM has unlock settings and vgpu_unlock-rs is not set up\n"
     "on that node (LD_PRELOAD in nvidia-vgpu-mgr.service.d); nothing is left half applied.\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook tune 100 --param frame_rate_limiter=0 --param enable_uvm=1\n"
     "  pve-vgpu-hook tune 100 --unlock frl_enabled=0 --unlock framebuffer=896MiB\n"
     "  pve-vgpu-hook tune 100\n"
     "  pve-vgpu-hook tune 100 --clear framebuffer --dry-run --json\n"},
    {"doctor", cmd_doctor, "doctor [--json]",
     "is this host ready for vGPUs? each problem with its fix",
     "Checks, read-only, what most often stops a vGPU start before any VM is involved, and\n"
     "prints one problem per line with the exact fix:\n"
     "  - an NVIDIA GPU bound to nvidia that offers no vGPU type: nvidia_vgpu_vfio not loaded,\n"
     "    or not built for the running kernel (DKMS)\n"
     "  - no nvidia_vgpu_vfio for the kernel the node boots next (a kernel upgrade without the\n"
     "    DKMS build): fix 'dkms autoinstall -k RELEASE' before the reboot\n"
     "  - an SR-IOV GPU (Ampere and newer) whose virtual functions are off (after every reboot)\n"
     "  - the IOMMU off (no /sys/kernel/iommu_groups)\n"
     "  - nvidia-vgpu-mgr not running\n"
     "  - nvidia-vgpud not running where GPUs before Ampere (no SR-IOV) need it\n"
     "  - vgpu_unlock-rs older than the driver (nvidia-vgpu-mgr logged 'Parameters size for\n"
     "    ... was N bytes, expected M bytes' in the last 24 h): its overrides are ignored\n"
     "  - the host clock not synchronised (guests' licensing takes its time from the host)\n"
     "  - qemu-server older than 8.2.5 where VFs use NVIDIA's vendor interface\n"
     "  - HA vGPU VMs HA may move where they cannot start (no ha-sync rule, or out of step),\n"
     "    or that it cannot be told (ha-unknown)\n"
     "  - our settings or vgpu_unlock's files unreadable or invalid\n"
     "Exit status 0 when the node is ready, 1 when not. It changes nothing.\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook doctor\n"
     "  pve-vgpu-hook doctor --json\n"},
    {"diagnose", cmd_diagnose, "diagnose VMID [--json]",
     "why the VM's last start failed, from the task log and the journal",
     "Reads this node's last 'qm start' task of the VM (/var/log/pve/tasks: its log, with\n"
     "QEMU's 'kvm:' lines and the final TASK OK / TASK ERROR) and the journal of the kernel,\n"
     "nvidia-vgpu-mgr and nvidia-vgpud from that start on, and names what failed: the cause,\n"
     "the evidence (source, time, line) and the fix. Lines count for the VM when they name its\n"
     "vGPUs' UUIDs (%08d-0000-0000-0000-%012d: index, VMID), come from the manager process\n"
     "that received the start call for one of them, or name its VFs (vendor interface); other\n"
     "VMs' lines and lines of earlier starts are never blamed on it. Host-wide lines (GPU off\n"
     "the bus, nvidia-vgpud without types, the manager failing) count during the start only.\n"
     "Known causes: no free instance, no vGPU types, SR-IOV VFs off or all in use, QEMU\n"
     "without -uuid, a bad vgpu_unlock profile override, a board that is not vGPU-capable,\n"
     "the unlock not in the kernel module, one vGPU per VM only, the guest driver of another\n"
     "branch, the manager not answering or not starting, a vGPU stuck after ERESTARTSYS, a\n"
     "second VM on a consumer GPU, a GPU off the bus, a hookscript refusal. Warnings: the\n"
     "task's, and vgpu_unlock-rs older than the driver. Harmless lines ('vGPU migration\n"
     "disabled', 'Could not enable error recovery', ...) are never causes; a failure the\n"
     "catalogue does not know is shown with its evidence as 'unknown'.\n"
     "Under --root the journal is the files below <root>/var/log/journal. Read-only.\n"
     "Exit status 0 when diagnosed (also when a failure was found), 1 when the VM has no\n"
     "start task on this node. --json: {vmid, task {upid, start, end, status, log_read},\n"
     "outcome (ok, failed, unknown), causes and warnings [{code, message, cause, fix,\n"
     "evidence [{source, time, line}], more_evidence}], journal {read, entries, capped, error}}.\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook diagnose 100\n"
     "  pve-vgpu-hook diagnose 100 --json\n"},
    {"config", cmd_config, "config check [FILE] [--json]",
     "validate a settings file before it goes live",
     "Reads FILE (default: the live settings, " CONFIG_DEFAULT_PATH " or --config's\n"
     "file) as every command would and says whether it is valid: exit 0 with a one-line\n"
     "summary, or exit 1 with the file, line:column and key of what is wrong. FILE is a file\n"
     "of this machine (relative to the current directory), not below --root. A missing\n"
     "default file is valid (every default applies); a named one must exist. Check an edited\n"
     "copy, then move it into place. --json prints {\"valid\", \"file\", \"vms\", \"error\"}.\n"
     "While the live file is not valid, every command names it: types, status, check and\n"
     "doctor show the host with the defaults and exit 1; pre-start, attach, detach, tune and\n"
     "cleanup refuse and change nothing; post-stop still removes the VM's vGPUs (default\n"
     "wait) and says why.\n"
     "\n"
     "Examples:\n"
     "  cp /etc/pve/vgpu-hook.json /root/vgpu-hook.json   (edit the copy)\n"
     "  pve-vgpu-hook config check /root/vgpu-hook.json\n"
     "  pve-vgpu-hook config check\n"},
    {"setup", cmd_setup, "setup [--storage STORAGE] [--dry-run] [--json]",
     "make the hookscript available on a storage",
     "Finds the storage's directory in /etc/pve/storage.cfg (default storage: local), checks\n"
     "that it allows snippets (if not, prints the exact 'pvesm set' command and stops), and\n"
     "puts pve-vgpu-hook into <path>/snippets/: a symlink to the installed binary\n"
     "/usr/bin/pve-vgpu-hook (refused when it is missing) on a local directory, or a small\n"
     "wrapper script on shared storage (nfs, cifs, cephfs, glusterfs). Running it\n"
     "again changes nothing. It then lists VMs that have another hookscript and how to keep\n"
     "it: Proxmox runs one hookscript per VM, and pve-vgpu-hook runs the executables in\n"
     "/etc/pve-vgpu-hook/hooks.d/ (run-parts names) after its own work, with the same\n"
     "arguments and environment. A failing one stops a start (pve-vgpu-hook first removes\n"
     "the vGPU it created); in other phases it is reported and the rest still run. A hook\n"
     "runs only if it and its directories are root's and not writable by group or others,\n"
     "and for at most hook_timeout_s seconds (see 'help config'). pve-vgpu-hook never runs\n"
     "itself there: a copy of it is skipped, and run from a hook (PVE_VGPU_HOOK_DEPTH set) it\n"
     "does nothing and names that hook. VMs whose hookscript is pve-vgpu-hook already are\n"
     "named as such.\n" EDIT_OPTS_HELP "\n"
     "Examples:\n"
     "  pve-vgpu-hook setup --dry-run\n"
     "  pve-vgpu-hook setup\n"
     "  pve-vgpu-hook setup --storage cephfs\n"
     "  qm set 100 --hookscript local:snippets/pve-vgpu-hook\n"},
    {"metrics", cmd_metrics, "metrics [--output FILE]",
     "Prometheus metrics: vGPUs per GPU and type, per VM, leftovers, readiness",
     "Prints what 'status' and 'doctor' see in Prometheus' text format (pve_vgpu_*): per GPU\n"
     "its model, kind and mode, framebuffer and VFs; per GPU and type the vGPUs in use and\n"
     "the instances the driver can still create (on SR-IOV at most the type's max_instance\n"
     "less what the GPU hosts); each VM's vGPU with its state; leftovers;\n"
     "running VMs without their vGPU; whether doctor finds the host ready, and how many\n"
     "problems it finds; pve_vgpu_scrape_success 0 when a part of the host could not be read\n"
     "(stderr says which, and the exit status is 1).\n"
     "  --output FILE  write FILE instead, atomically (a temp file beside it, then a rename),\n"
     "                 for node-exporter's textfile collector. FILE is a file of this machine,\n"
     "                 as with --config (relative to the current directory, not below --root).\n"
     "The package ships pve-vgpu-hook-metrics.timer, off by default: it writes\n"
     "/var/lib/prometheus/node-exporter/pve-vgpu-hook.prom every minute once enabled.\n"
     "\n"
     "Examples:\n"
     "  pve-vgpu-hook metrics\n"
     "  pve-vgpu-hook metrics --output /var/lib/prometheus/node-exporter/pve-vgpu-hook.prom\n"
     "  systemctl enable --now pve-vgpu-hook-metrics.timer\n"},
};

static const char *const hook_help =
    "Hookscript mode (Proxmox runs this):\n"
    "  pve-vgpu-hook VMID PHASE      PHASE: pre-start | post-start | pre-stop | post-stop\n"
    "\n"
    "  pre-start   validates the VM's vGPU (hostpciN: <pci>,mdev=<type>) against the allocation\n"
    "              policy, creates the mdev with UUID %08d-0000-0000-0000-%012d (hostpci index,\n"
    "              VMID) and, on qemu-server older than 7.2-4, makes sure args has -uuid.\n"
    "              A non-zero exit stops the start; the message says why and what to do.\n"
    "  post-stop   removes the VM's mdevs (after waiting up to remove_wait_s for the NVIDIA\n"
    "              driver to do it), unless the VM is running again.\n"
    "  post-start, pre-stop: nothing of its own.\n"
    "  Then, in every phase, the executables in /etc/pve-vgpu-hook/hooks.d/ run with the same\n"
    "  arguments (the VM's other hookscripts: Proxmox allows one per VM; see 'help setup'),\n"
    "  each only if root alone can change it, and for at most hook_timeout_s.\n"
    "  The VM config is read as Proxmox reads it: a hostpciN line Proxmox rejects is warned\n"
    "  about and not acted on. PVE_VGPU_HOOK_ROOT/_CONFIG are ignored here.\n"
    "\n"
    "Install: pve-vgpu-hook setup; qm set VMID --hookscript local:snippets/pve-vgpu-hook\n";

static void usage(FILE *out) {
    fprintf(
        out, "Usage: pve-vgpu-hook [GLOBAL] COMMAND [ARGS]\n"
             "       pve-vgpu-hook VMID PHASE\n\n"
    );
    fputs(hook_help, out);
    fprintf(out, "\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strlen(commands[i].usage) > 32) { /* a long synopsis gets a line of its own */
            fprintf(out, "  %s\n  %-32s %s\n", commands[i].usage, "", commands[i].summary);
        } else {
            fprintf(out, "  %-32s %s\n", commands[i].usage, commands[i].summary);
        }
    }
    fprintf(out, "  %-32s %s\n", "help COMMAND", "explain one command, with an example");
    fprintf(out, "  %-32s %s\n", "help config", "every key of the settings file, config check");
    fprintf(
        out,
        "\nGlobal options:\n"
        "  --root DIR       resolve every host path (/sys, /etc/pve, /run, /proc,\n"
        "                   /var/lib/dpkg) under DIR; nothing leaves it. Also env\n"
        "                   PVE_VGPU_HOOK_ROOT. For tests and for looking at a captured host.\n"
        "  --config FILE    our settings (JSON): a file of this machine (relative to the\n"
        "                   current directory) that must exist; default %s,\n"
        "                   which may be missing. Also env PVE_VGPU_HOOK_CONFIG.\n"
        "                   Hook mode (VMID PHASE) ignores both environment variables.\n"
        "  --version, --help\n"
        "\nExit status: 0 done, 1 refused or failed (stderr says why), 2 usage error.\n",
        CONFIG_DEFAULT_PATH
    );
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    _cleanup_free_ char *esc = str_escape_ctl(msg, strlen(msg), false);
    fprintf(stderr, "%s: %s\nTry 'pve-vgpu-hook --help'.\n", PVH_PROG, esc ? esc : msg);
    return EXIT_USAGE;
}

static const struct command *find_command(const char *name) {
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (!strcmp(commands[i].name, name)) {
            return &commands[i];
        }
    }
    return NULL;
}

static int cmd_help(const char *name) {
    const struct command *c = find_command(name);
    if (!c) {
        if (!strcmp(name, "hook")) {
            fputs(hook_help, stdout);
            return 0;
        }
        return usage_error("no command or topic '%s' (see --help)", name);
    }
    printf("Usage: pve-vgpu-hook [GLOBAL] %s\n\n%s", c->usage, c->help);
    if (c->run == cmd_config) { /* and the topic: every key */
        printf("\n%s", CONFIG_HELP);
    }
    return 0;
}

static bool looks_numeric(const char *s) {
    return *s && strspn(s, "0123456789") == strlen(s);
}

static int parse_vmid_arg(const char *s, unsigned long *vmid) {
    if (!vmid_parse(s, vmid)) {
        fprintf(
            stderr,
            "%s: '%s' is not a VMID: a VMID is a whole number from %lu to %lu\n"
            "Try 'pve-vgpu-hook --help'.\n",
            PVH_PROG, s, VMID_MIN, VMID_MAX
        );
        return EXIT_USAGE;
    }
    return 0;
}

/* A file of this machine as the shell names it (relative to the current directory, never
 * below --root), made absolute for real_fs; real_fs opened when it is not yet. */
static int machine_path(struct cli_ctx *ctx, const char *path, char *abs, size_t size) {
    int r;
    if (path[0] == '/') {
        r = str_fmt(abs, size, "%s", path);
    } else {
        char cwd[PATH_MAX];
        r = getcwd(cwd, sizeof(cwd)) ? str_fmt(abs, size, "%s/%s", cwd, path) : -errno;
    }
    if (r == 0 && ctx->real_fs.rootfd < 0) {
        r = hostfs_open(&ctx->real_fs, "/");
    }
    return r;
}

static int open_root(struct cli_ctx *ctx) {
    int r = hostfs_open(&ctx->fs, ctx->root);
    if (r == 0 && ctx->config_path) {
        r = machine_path(ctx, ctx->config_path, ctx->config_abs, sizeof(ctx->config_abs));
        if (r < 0) {
            fprintf(
                stderr, "%s: error: cannot use --config '%s': %s\n", PVH_PROG, ctx->config_path,
                strerror(-r)
            );
            hostfs_close(&ctx->fs);
            return 1;
        }
        return 0;
    }
    if (r < 0) {
        fprintf(
            stderr, "%s: error: cannot open root directory '%s': %s\n", PVH_PROG,
            ctx->root ? ctx->root : "/", strerror(-r)
        );
        return 1;
    }
    return 0;
}

static void close_root(struct cli_ctx *ctx) {
    hostfs_close(&ctx->fs);
    hostfs_close(&ctx->real_fs);
}

static struct hook_env env_of(struct cli_ctx *ctx) {
    return (struct hook_env
    ){.fs = &ctx->fs,
      .config_fs = ctx->config_path ? &ctx->real_fs : &ctx->fs,
      .config_path = ctx->config_path ? ctx->config_abs : NULL,
      .migrated_from = getenv("PVE_MIGRATED_FROM"),
      .chained_from = getenv(HOOK_DEPTH_ENV)};
}

static int run_hook(struct cli_ctx *ctx, int argc, char **argv) {
    unsigned long vmid;
    if (argc < 2) {
        return usage_error(
            "%s: missing PHASE (pre-start, post-start, pre-stop, post-stop)", argv[0]
        );
    }
    if (argc > 2) {
        return usage_error("unexpected argument '%s': hookscripts get exactly VMID PHASE", argv[2]);
    }
    int r = parse_vmid_arg(argv[0], &vmid);
    if (r) {
        return r;
    }
    char ctxname[32];
    snprintf(ctxname, sizeof(ctxname), "VM %lu", vmid);
    log_set_context(ctxname);
    log_use_syslog(true);
    /* Proxmox runs hookscripts with VMID PHASE only: an exported test root or settings file
     * left in an admin's environment must not redirect real starts. Options still count. */
    if (ctx->root_from_env) {
        log_msg(LOG_LVL_WARN, "PVE_VGPU_HOOK_ROOT is ignored in hook mode (use --root)");
        ctx->root = NULL;
    }
    if (ctx->config_from_env) {
        log_msg(LOG_LVL_WARN, "PVE_VGPU_HOOK_CONFIG is ignored in hook mode (use --config)");
        ctx->config_path = NULL;
    }
    if ((r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    r = hook_run(&env, vmid, argv[1]);
    close_root(ctx);
    log_use_syslog(false);
    return r;
}

/* Options of an admin command: flags and one optional positional VMID. */
struct cmd_opts {
    bool json, dry_run, dumpjson, cluster, all, migrate;
    const char *parent;
    const char *vmid;
};

enum {
    OPT_JSON = 1000,
    OPT_DRY_RUN,
    OPT_PARENT,
    OPT_TYPE,
    OPT_GPU,
    OPT_INDEX,
    OPT_HOOKSCRIPT,
    OPT_STORAGE,
    OPT_PARAM,
    OPT_UNLOCK,
    OPT_CLEAR,
    OPT_OUTPUT,
    OPT_DUMPJSON,
    OPT_CLUSTER,
    OPT_ALL,
    OPT_LIVE_MIGRATION,
    OPT_NO_LIVE_MIGRATION,
    OPT_MIGRATE,
};

/* The next option of a command's arguments (argv[0] is the command), getopt_long style: an
 * unknown option or a missing value is a usage error (*status set, -1 returned). */
static int
next_opt(int argc, char **argv, const struct option *longopts, const char *usage, int *status) {
    opterr = 0;
    int c = getopt_long(argc, argv, ":", longopts, NULL);
    if (c == ':') {
        *status = usage_error("%s needs a value; usage: pve-vgpu-hook %s", argv[optind - 1], usage);
        return -1;
    }
    if (c == '?') {
        _cleanup_free_ char *esc =
            str_escape_ctl(argv[optind - 1], strlen(argv[optind - 1]), false);
        fprintf(
            stderr, "%s: unexpected argument '%s'\nUsage: pve-vgpu-hook %s\n", PVH_PROG,
            esc ? esc : "?", usage
        );
        *status = EXIT_USAGE;
        return -1;
    }
    return c;
}

/* After the options: at most `max` positional arguments (a VMID), else a usage error. */
static int positional(int argc, char **argv, int max, const char *usage, const char **out) {
    if (argc - optind > max) {
        _cleanup_free_ char *esc =
            str_escape_ctl(argv[optind + max], strlen(argv[optind + max]), false);
        fprintf(
            stderr, "%s: unexpected argument '%s'\nUsage: pve-vgpu-hook %s\n", PVH_PROG,
            esc ? esc : "?", usage
        );
        return EXIT_USAGE;
    }
    *out = optind < argc ? argv[optind] : NULL;
    return 0;
}

static int
parse_opts(int argc, char **argv, const char *allowed, struct cmd_opts *o, const char *usage) {
    static const struct option all[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"parent", required_argument, NULL, OPT_PARENT},
        {"dumpjson", no_argument, NULL, OPT_DUMPJSON},
        {"cluster", no_argument, NULL, OPT_CLUSTER},
        {"all", no_argument, NULL, OPT_ALL},
        {"migrate", no_argument, NULL, OPT_MIGRATE},
    };
    static const char letters[] = {'j', 'n', 'p', 'd', 'c', 'a', 'm'};
    struct option longopts[ARRAY_SIZE(all) + 1] = {{0}};
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
        if (strchr(allowed, letters[i])) {
            longopts[n++] = all[i];
        }
    }
    memset(o, 0, sizeof(*o));
    optind = 0;
    int c, status = 0;
    while ((c = next_opt(argc, argv, longopts, usage, &status)) != -1) {
        o->json |= c == OPT_JSON;
        o->dry_run |= c == OPT_DRY_RUN;
        o->dumpjson |= c == OPT_DUMPJSON;
        o->cluster |= c == OPT_CLUSTER;
        o->all |= c == OPT_ALL;
        o->migrate |= c == OPT_MIGRATE;
        o->parent = c == OPT_PARENT ? optarg : o->parent;
    }
    if (status) {
        return status;
    }
    bool takes_vmid = strchr(allowed, 'v') != NULL;
    if ((status = positional(argc, argv, takes_vmid, usage, &o->vmid))) {
        return status;
    }
    if (takes_vmid && !o->vmid) {
        return usage_error("missing VMID; usage: pve-vgpu-hook %s", usage);
    }
    return 0;
}

static int fail(const struct pvh_err *e) {
    log_err(e);
    return 1;
}

/* Publish this node's inventory on the way (status, types): a failure is a warning. */
static void publish_quietly(const struct hook_env *env, const struct host_status *st) {
    struct pvh_err e = {0};
    if (cluster_publish(env, st, &e) < 0) {
        log_msg(LOG_LVL_WARN, "%s; %s", e.msg, e.hint[0] ? e.hint : "other nodes see old data");
    }
}

/* A command on one VM: its options, the VMID, and the root opened; a non-zero exit status
 * when any of them fails (said on stderr). */
static int open_vmid_command(
    struct cli_ctx *ctx, int argc, char **argv, const char *allowed, const char *usage,
    struct cmd_opts *o, unsigned long *vmid
) {
    int r = parse_opts(argc, argv, allowed, o, usage);
    if (r == 0) {
        r = parse_vmid_arg(o->vmid, vmid);
    }
    return r ? r : open_root(ctx);
}

/* What types shows. Without --parent the whole status model, which the publishing on the way
 * needs anyway: the host is read once. --parent: the settings, that GPU's mdev model and the
 * GPUs on NVIDIA's vendor interface that it names (-ENODEV, with e saying so: none). */
static int types_gather(
    const struct hook_env *env, const char *parent, struct host_status *st, struct pvh_err *e
) {
    if (!parent) {
        return admin_status(env, st, e);
    }
    memset(st, 0, sizeof(*st));
    st->settings_bad =
        config_load(env, CONFIG_USE_SHOW, &st->cfg, &st->warnings, &st->settings) < 0;
    int r = inventory_load_gpu(env->fs, &st->host, parent, NULL, e);
    if (r < 0) {
        return r;
    }
    (void)inventory_nvidia_gpus(env->fs, &st->nvidia, &st->nnvidia); /* best effort */
    /* a GPU on NVIDIA's vendor interface is named by its PF or one of its VFs */
    st->nnvidia = nvidia_gpus_keep(st->nvidia, st->nnvidia, parent);
    if (st->nnvidia && st->host.nparents == 0) { /* no mdev parent: no mdev model to show */
        inventory_free(&st->host);
    }
    if (st->nnvidia == 0 && inv_find_parent(&st->host, parent) == NO_INDEX &&
        st->host.nparents == 0) {
        r = err_set(
            e, -ENODEV,
            "%s offers no vGPU types (no mdev_supported_types, and no "
            "VF of NVIDIA's vendor interface)",
            parent
        );
        err_hint(e, "is the vGPU driver loaded? 'pve-vgpu-hook types' lists every GPU");
    }
    return r;
}

static int cmd_types(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    int r = parse_opts(argc, argv, "jpd", &o, "types [--parent PCI] [--json | --dumpjson]");
    char parent[16] = "";
    if (r == 0 && o.parent && pci_id_normalize(o.parent, parent, sizeof(parent)) < 0) {
        return usage_error("'%s' is not a PCI id (like 0000:06:00.0)", o.parent);
    }
    if (r || (r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct host_status st;
    r = types_gather(&env, o.parent ? parent : NULL, &st, &e);
    /* shown with the defaults, the error named on stderr (and in --json's settings_error;
     * --dumpjson is mdevctl's array, which has no place for it) */
    log_warnings(&st.warnings);
    if (st.settings_bad) {
        log_err(&st.settings.err);
    }
    if (r == 0 && !st.settings_bad) { /* a refusal changes nothing */
        publish_quietly(&env, o.parent ? NULL : &st);
    }
    for (size_t g = 0; g < st.nnvidia; g++) {
        st.nvidia[g].users_known = false; /* who uses a VF is status' to say, not types' */
    }
    if (r == 0) {
        const struct host *h = &st.host;
        log_warnings(&st.host.warnings);
        bool is_parent = o.parent && inv_find_parent(h, parent) != NO_INDEX;
        enum report_format f = o.dumpjson ? REPORT_DUMPJSON : o.json ? REPORT_JSON : REPORT_TEXT;
        report_types(
            f ? stdout : text_out(), &st.cfg, h, st.nvidia, st.nnvidia, is_parent ? parent : NULL,
            st.settings_bad ? &st.settings : NULL, f
        );
    }
    bool settings_bad = st.settings_bad;
    admin_status_free(&st);
    close_root(ctx);
    return r < 0 ? fail(&e) : settings_bad;
}

static int status_cluster(struct cli_ctx *ctx, bool json) {
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct cluster_view v;
    struct hasync_problem *ha = NULL;
    struct pvh_err ha_unknown = {0};
    size_t nha = 0;
    int r = cluster_load(&env, &v, &e);
    log_warnings(&v.warnings);
    if (r == 0 && hasync_problems(&env, &v, &ha, &nha, &ha_unknown) < 0) {
        r = err_set(&e, -ENOMEM, "out of memory");
    }
    if (r == 0) {
        report_cluster(json ? stdout : text_out(), &v, ha, nha, &ha_unknown, json);
    }
    free(ha);
    cluster_view_free(&v);
    close_root(ctx);
    return r < 0 ? fail(&e) : 0;
}

static int cmd_where(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    unsigned long vmid;
    int r = open_vmid_command(ctx, argc, argv, "jmv", "where VMID [--migrate] [--json]", &o, &vmid);
    if (r) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct cluster_view v;
    struct where_node *nodes = NULL;
    size_t n = 0;
    char from[NODE_NAME_MAX] = "";
    r = cluster_load(&env, &v, &e);
    log_warnings(&v.warnings);
    if (r == 0 &&
        (r = cluster_where(&env, vmid, &v, o.migrate, &nodes, &n, from, sizeof(from), &e)) == 0) {
        report_where(o.json ? stdout : text_out(), vmid, o.migrate, from, nodes, n, o.json);
    }
    bool any = false;
    for (size_t i = 0; r == 0 && i < n; i++) {
        any |= nodes[i].can;
    }
    free(nodes);
    cluster_view_free(&v);
    close_root(ctx);
    return r < 0 ? fail(&e) : !any;
}

static int cmd_publish(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    int r = parse_opts(argc, argv, "", &o, "publish");
    if (r || (r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    r = cluster_publish(&env, NULL, &e);
    int status = r < 0 ? fail(&e) : 0;
    struct pvh_config cfg;
    struct pvh_warnings w = {0};
    struct config_error ce;
    if (config_load(&env, CONFIG_USE_SHOW, &cfg, &w, &ce) == 0 && cfg.ha_rules) {
        struct hasync_result res;
        struct pvh_err he = {0};
        r = ha_sync(&env, false, &res, &w, &he);
        status |= r < 0 ? fail(&he) : 0;
        hasync_free(&res);
    }
    log_warnings(&w);
    warn_free(&w);
    config_free(&cfg);
    close_root(ctx);
    return status;
}

static int cmd_ha_sync(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    int r = parse_opts(argc, argv, "jn", &o, "ha-sync [--dry-run] [--json]");
    if (r || (r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct pvh_warnings w = {0};
    struct hasync_result res;
    r = ha_sync(&env, o.dry_run, &res, &w, &e);
    log_warnings(&w);
    warn_free(&w);
    report_ha_sync(o.json ? stdout : text_out(), &res, r, &e, o.dry_run, o.json);
    bool skipped = false;
    for (size_t i = 0; i < res.n; i++) {
        skipped |= res.items[i].action == HASYNC_SKIP;
    }
    hasync_free(&res);
    close_root(ctx);
    return r < 0 ? fail(&e) : skipped;
}

static int cmd_status(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    int r = parse_opts(argc, argv, "jc", &o, "status [--cluster] [--json]");
    if (r || (r = open_root(ctx))) {
        return r;
    }
    if (o.cluster) {
        return status_cluster(ctx, o.json);
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct host_status st;
    r = admin_status(&env, &st, &e);
    if (r == 0 && !st.settings_bad) { /* a refusal changes nothing */
        publish_quietly(&env, &st);
    }
    log_warnings(&st.warnings);
    bool settings_bad = st.settings_bad;
    if (settings_bad && !o.json) { /* --json: its settings_error */
        log_err(&st.settings.err);
    }
    if (r == 0) {
        report_status(o.json ? stdout : text_out(), &st, o.json);
    }
    admin_status_free(&st);
    close_root(ctx);
    return r < 0 ? fail(&e) : settings_bad;
}

/* check --all: every onboot vGPU VM of this node, in boot order, on a freshly booted host. */
static int check_all(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    int r = parse_opts(argc, argv, "ja", &o, "check --all [--json]");
    if (r || (r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    env.dry_run = true;
    struct pvh_err e = {0};
    struct boot_check c;
    r = bootcheck_run(&env, &c, &e);
    if (!o.json) {
        log_warnings(&c.warnings);
        for (size_t i = 0; r == 0 && i < c.n; i++) {
            char vm[32];
            snprintf(vm, sizeof(vm), "VM %lu", c.vms[i].vmid);
            log_set_context(vm);
            log_warnings(&c.vms[i].warnings);
            log_set_context(NULL);
        }
    }
    int status = r < 0 ? fail(&e) : report_check_all(o.json ? stdout : text_out(), &c, o.json);
    bootcheck_free(&c);
    close_root(ctx);
    return status;
}

static int cmd_check(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    unsigned long vmid;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--all")) {
            return check_all(ctx, argc, argv);
        }
    }
    int r = open_vmid_command(ctx, argc, argv, "jv", "check VMID [--json]", &o, &vmid);
    if (r) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    env.dry_run = true;
    struct pvh_err e = {0};
    struct vm_plan p;
    r = plan_pre_start(&env, vmid, &p, &e);
    if (!o.json) {
        log_warnings(&p.host.warnings);
        log_warnings(&p.warnings);
    }
    int status = report_check(o.json ? stdout : text_out(), vmid, r, &p, &e, o.json);
    plan_free(&p);
    close_root(ctx);
    return status;
}

static int cmd_doctor(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    int r = parse_opts(argc, argv, "j", &o, "doctor [--json]");
    if (r || (r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct readiness rd;
    r = readiness_check(&env, &rd);
    int status = 1;
    if (r < 0) {
        fprintf(stderr, "%s: error: %s\n", PVH_PROG, strerror(-r));
    } else {
        status = report_doctor(o.json ? stdout : text_out(), &rd, o.json);
    }
    readiness_free(&rd);
    close_root(ctx);
    return status;
}

static int cmd_diagnose(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    unsigned long vmid;
    int r = open_vmid_command(ctx, argc, argv, "jv", "diagnose VMID [--json]", &o, &vmid);
    if (r) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct diagnosis d;
    r = diagnose_vm(&env, vmid, &d, &e);
    if (r == 0) {
        if (!d.journal_read) {
            log_msg(LOG_LVL_WARN, "%s: only the task log was judged", d.journal_err.msg);
        } else if (d.journal_capped) {
            log_msg(
                LOG_LVL_WARN, "only the first %zu journal entries after the start were read",
                d.njournal
            );
        }
        report_diagnose(o.json ? stdout : text_out(), &d, o.json);
        diagnosis_free(&d);
    }
    close_root(ctx);
    return r < 0 ? fail(&e) : 0;
}

static int cmd_cleanup(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    int r = parse_opts(argc, argv, "jn", &o, "cleanup [--dry-run] [--json]");
    if (r || (r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct pvh_warnings w = {0};
    struct cleanup_item *items = NULL;
    size_t n = 0;
    struct vm_warnings records = {0}, mappings = {0};
    r = admin_cleanup(&env, o.dry_run, &items, &n, &w, &e);
    if (r == 0) { /* the records after the devices: a device is never kept for a record */
        r = managed_remove_stale(&env, o.dry_run, &records, &mappings, &w, &e);
    }
    log_warnings(&w);
    warn_free(&w);
    int status = r < 0 ? fail(&e) : 0;
    if (r == 0) {
        report_cleanup(
            o.json ? stdout : text_out(), items, n, &records, &mappings, o.dry_run, o.json
        );
        for (size_t i = 0; i < n; i++) {
            status |= items[i].verdict == CLEAN_FAILED;
        }
    }
    free(items);
    vm_warnings_free(&records);
    vm_warnings_free(&mappings);
    close_root(ctx);
    return status;
}

/* attach, detach, tune and setup: their one result, as text (warnings on stderr) or JSON. */
static int print_edit(
    struct edit_result *res, const struct vm_tuning *tuning, int r, const struct pvh_err *e,
    bool json
) {
    if (!json) {
        log_warnings(&res->warnings);
    }
    int status = report_edit(json ? stdout : text_out(), res, tuning, r, e, json);
    edit_result_free(res);
    return status;
}

/* The usage error of a --gpu attach_gpu_arg refused with r: a name that is no node's (an FQDN,
 * most likely) is named, with Proxmox's rule. */
static int attach_gpu_usage(const char *arg, int r) {
    if (r == -ENXIO) {
        _cleanup_free_ char *node = str_escape_ctl(arg, strcspn(arg, ":"), false);
        _cleanup_free_ char *all = str_escape_ctl(arg, strlen(arg), false);
        return usage_error(
            "'%s' in '--gpu %s' is no node name: " NODE_NAME_RULE, node ? node : "?",
            all ? all : "?"
        );
    }
    return usage_error(
        "'%s' is not a PCI id (like 0000:06:00.0) or NODE:PCI (like pve2:0000:81:00.0)", arg
    );
}

static int cmd_attach(struct cli_ctx *ctx, int argc, char **argv) {
    static const char *usage = "attach VMID [--type TYPE] [--gpu [NODE:]PCI]... [--index N] "
                               "[--hookscript VOLID] [--[no-]live-migration] [--dry-run] "
                               "[--json]";
    static const struct option longopts[] = {
        {"live-migration", no_argument, NULL, OPT_LIVE_MIGRATION},
        {"no-live-migration", no_argument, NULL, OPT_NO_LIVE_MIGRATION},
        {"json", no_argument, NULL, OPT_JSON},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"type", required_argument, NULL, OPT_TYPE},
        {"gpu", required_argument, NULL, OPT_GPU},
        {"index", required_argument, NULL, OPT_INDEX},
        {"hookscript", required_argument, NULL, OPT_HOOKSCRIPT},
        {0},
    };
    struct attach_request req = {.index = -1};
    struct edit_result res = {0};
    bool json = false;
    const char *vmid = NULL;
    int c, status = 0;
    optind = 0;
    while ((c = next_opt(argc, argv, longopts, usage, &status)) != -1) {
        if (c == OPT_JSON || c == OPT_DRY_RUN) {
            json |= c == OPT_JSON;
            res.dry_run |= c == OPT_DRY_RUN;
        } else if (c == OPT_TYPE) {
            req.type = optarg;
        } else if (c == OPT_HOOKSCRIPT) {
            req.hookscript = optarg;
        } else if (c == OPT_LIVE_MIGRATION || c == OPT_NO_LIVE_MIGRATION) {
            req.live_migration = c == OPT_LIVE_MIGRATION ? 1 : -1;
        } else if (c == OPT_INDEX) {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 0 || v >= HOSTPCI_MAX) {
                return usage_error("--index takes a number from 0 to 15, not '%s'", optarg);
            }
            req.index = (int)v;
        } else if (req.ngpus == ARRAY_SIZE(req.gpus)) {
            return usage_error("at most %zu --gpu options", ARRAY_SIZE(req.gpus));
        } else if ((status = attach_gpu_arg(optarg, &req)) < 0) {
            return attach_gpu_usage(optarg, status);
        }
    }
    if (status || (status = positional(argc, argv, 1, usage, &vmid))) {
        return status;
    }
    if (!vmid) { /* without --type: the attached type again */
        return usage_error("attach needs a VMID; usage: pve-vgpu-hook %s", usage);
    }
    int r = parse_vmid_arg(vmid, &req.vmid);
    if (r || (r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    r = managed_attach(&env, &req, &res, &e);
    close_root(ctx);
    return print_edit(&res, NULL, r, &e, json);
}

static int cmd_detach(struct cli_ctx *ctx, int argc, char **argv) {
    struct cmd_opts o;
    unsigned long vmid;
    int r =
        open_vmid_command(ctx, argc, argv, "jnv", "detach VMID [--dry-run] [--json]", &o, &vmid);
    if (r) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct edit_result res = {.dry_run = o.dry_run};
    r = managed_detach(&env, vmid, &res, &e);
    close_root(ctx);
    return print_edit(&res, NULL, r, &e, o.json);
}

/* tune VMID without a change: the VM's tuning, as stored. */
static int
tune_show(struct cli_ctx *ctx, const struct hook_env *env, struct edit_result *res, bool json) {
    struct pvh_config cfg;
    struct pvh_err e = {0};
    int r = managed_vm_require(env, res->vmid, &e);
    r = r < 0 ? r : config_load_to_act(env, &cfg, &res->warnings, &e);
    static const struct vm_tuning none = {0};
    const struct vm_settings *vs = r == 0 ? config_vm(&cfg, res->vmid) : NULL;
    const struct vm_tuning *t = vs ? &vs->tuning : &none;
    res->result = "shown";
    snprintf(
        res->message, sizeof(res->message), "VM %lu: %s", res->vmid,
        tuning_empty(t) ? "no tuning" : "tuning applied at each start"
    );
    int status;
    if (json || r < 0) {
        status = print_edit(res, t, r, &e, json);
    } else {
        log_warnings(&res->warnings);
        report_tune(text_out(), res->vmid, t);
        edit_result_free(res);
        status = 0;
    }
    if (r == 0) {
        config_free(&cfg);
    }
    close_root(ctx);
    return status;
}

static int cmd_tune(struct cli_ctx *ctx, int argc, char **argv) {
    static const char *usage = "tune VMID [--param K=V]... [--unlock K=V]... [--clear [KEY]...] "
                               "[--dry-run] [--json]";
    static const struct option longopts[] = {
        {"param", required_argument, NULL, OPT_PARAM},
        {"unlock", required_argument, NULL, OPT_UNLOCK},
        {"clear", no_argument, NULL, OPT_CLEAR},
        {"json", no_argument, NULL, OPT_JSON},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {0},
    };
    struct tune_request req = {0};
    struct edit_result res = {0};
    bool json = false;
    int c, status = 0;
    optind = 0;
    while ((c = next_opt(argc, argv, longopts, usage, &status)) != -1) {
        if (c == OPT_JSON || c == OPT_DRY_RUN) {
            json |= c == OPT_JSON;
            res.dry_run |= c == OPT_DRY_RUN;
        } else if (c == OPT_CLEAR) {
            req.clear = true;
        } else if ((c == OPT_PARAM ? req.nparams : req.nunlock) == TUNE_MAX) {
            return usage_error("at most %d --param and %d --unlock options", TUNE_MAX, TUNE_MAX);
        } else if (c == OPT_PARAM) {
            req.params[req.nparams++] = optarg;
        } else {
            req.unlock[req.nunlock++] = optarg;
        }
    }
    if (status) {
        return status;
    }
    if (optind >= argc) {
        return usage_error("tune needs a VMID; usage: pve-vgpu-hook %s", usage);
    }
    const char *vmid = argv[optind++];
    for (; optind < argc; optind++) {
        if (!req.clear || req.nclear == TUNE_MAX) {
            return positional(argc, argv, 0, usage, &vmid);
        }
        req.clear_keys[req.nclear++] = argv[optind];
    }
    int r = parse_vmid_arg(vmid, &req.vmid);
    if (r || (r = open_root(ctx))) {
        return r;
    }
    res.vmid = req.vmid;
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    if (!req.clear && !req.nparams && !req.nunlock) {
        return tune_show(ctx, &env, &res, json);
    }
    r = managed_tune(&env, &req, &res, &e);
    close_root(ctx);
    return print_edit(&res, res.has_tuning ? &res.tuning : NULL, r, &e, json);
}

static int cmd_setup(struct cli_ctx *ctx, int argc, char **argv) {
    static const char *usage = "setup [--storage STORAGE] [--dry-run] [--json]";
    static const struct option longopts[] = {
        {"storage", required_argument, NULL, OPT_STORAGE},
        {"json", no_argument, NULL, OPT_JSON},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {0},
    };
    const char *storage = "local", *extra;
    struct edit_result res = {0};
    bool json = false;
    int c, status = 0;
    optind = 0;
    while ((c = next_opt(argc, argv, longopts, usage, &status)) != -1) {
        json |= c == OPT_JSON;
        res.dry_run |= c == OPT_DRY_RUN;
        storage = c == OPT_STORAGE ? optarg : storage;
    }
    if (status || (status = positional(argc, argv, 0, usage, &extra))) {
        return status;
    }
    size_t sl = strlen(storage);
    if (!sl || sl > 63 ||
        strspn(
            storage, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-_."
        ) != sl) {
        return usage_error("'%s' is not a storage id", storage);
    }
    int r;
    if ((r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    r = setup_snippet(&env, storage, &res, &e);
    close_root(ctx);
    return print_edit(&res, NULL, r, &e, json);
}

static int cmd_config(struct cli_ctx *ctx, int argc, char **argv) {
    static const char *usage = "config check [FILE] [--json]";
    static const struct option longopts[] = {{"json", no_argument, NULL, OPT_JSON}, {0}};
    if (argc < 2 || strcmp(argv[1], "check") != 0) {
        return usage_error(
            "%s; usage: pve-vgpu-hook %s",
            argc < 2 ? "config needs a subcommand" : "config has one subcommand, check", usage
        );
    }
    bool json = false;
    const char *file = NULL;
    int c, status = 0;
    optind = 0;
    while ((c = next_opt(argc - 1, argv + 1, longopts, usage, &status)) != -1) {
        json = true;
    }
    if (status || (status = positional(argc - 1, argv + 1, 1, usage, &file))) {
        return status;
    }
    if (file && !*file) {
        return usage_error("config check needs a file name, not ''");
    }
    if (file) { /* named like --config: a file of this machine that must exist */
        ctx->config_path = file;
    }
    if ((status = open_root(ctx))) {
        return status;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_config cfg;
    struct pvh_warnings w = {0};
    struct config_error ce;
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = config_load_edit(&env, CONFIG_USE_CHECK, &cfg, NULL, &text, &len, &w, &ce);
    log_warnings(&w);
    warn_free(&w);
    const struct hostfs *fs;
    const char *path;
    config_where(&env, &fs, &path);
    if (r < 0 && !json) {
        status = fail(&ce.err);
    } else {
        status = report_config_check(
            json ? stdout : text_out(), &cfg, text != NULL, r < 0 ? &ce : NULL, path, json
        );
    }
    config_free(&cfg);
    close_root(ctx);
    return status;
}

/* The metrics text to stdout, or atomically to path (a file of this machine). */
static int metrics_emit(
    struct cli_ctx *ctx, const char *output, const char *path, const char *text, size_t len
) {
    if (!output) {
        return fwrite(text, 1, len, stdout) == len ? 0 : 1; /* cli_main reports the error */
    }
    int r = hostfs_replace_file(&ctx->real_fs, path, text, len, 0644);
    if (r == 0) {
        return 0;
    }
    struct pvh_err e = {0};
    err_set(&e, r, "cannot write the metrics to '%s': %s", output, strerror(-r));
    if (r == -ENOENT || r == -ENOTDIR) {
        err_hint(
            &e, "its directory does not exist: create it (node-exporter's textfile "
                "collector reads /var/lib/prometheus/node-exporter, which "
                "prometheus-node-exporter creates), or name another --output"
        );
    } else {
        err_hint(
            &e, "--output needs a file in a directory this user may write; nothing was "
                "changed"
        );
    }
    return fail(&e);
}

static int cmd_metrics(struct cli_ctx *ctx, int argc, char **argv) {
    static const char *usage = "metrics [--output FILE]";
    static const struct option longopts[] = {
        {"output", required_argument, NULL, OPT_OUTPUT},
        {0},
    };
    const char *output = NULL, *extra;
    int c, status = 0;
    optind = 0;
    while ((c = next_opt(argc, argv, longopts, usage, &status)) != -1) {
        output = optarg;
    }
    if (status || (status = positional(argc, argv, 0, usage, &extra))) {
        return status;
    }
    if (output && !*output) {
        return usage_error("--output needs a file name");
    }
    char path[PATH_MAX];
    int r = open_root(ctx);
    if (r || (output && (r = machine_path(ctx, output, path, sizeof(path))) < 0)) {
        if (r < 0) {
            fprintf(
                stderr, "%s: error: cannot use --output '%s': %s\n", PVH_PROG, output, strerror(-r)
            );
            close_root(ctx);
        }
        return r < 0 ? 1 : r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct host_status st;
    int sr = admin_status(&env, &st, &e);
    log_warnings(&st.warnings);
    log_warnings(&st.host.warnings);
    struct readiness rd;
    int rr = readiness_check(&env, &rd);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    /* scrape_success 0 is exit status 1, so a timer's unit shows the failure too */
    bool ok = mem && report_metrics(
                         mem, sr == 0 ? &st : NULL, rr == 0 ? &rd : NULL,
                         sr == 0 && rr == 0 && !st.settings_bad,
                         (double)now.tv_sec + (double)(now.tv_nsec / 1000000) / 1000
                     );
    status = sr < 0 ? fail(&e) : !ok;
    if (sr == 0 && st.settings_bad) { /* shown with the defaults; named, and exit 1 */
        log_err(&st.settings.err);
        status = 1;
    }
    if (rr < 0 || !mem || fclose(mem) != 0) {
        fprintf(stderr, "%s: error: %s\n", PVH_PROG, strerror(ENOMEM));
        status = 1;
    }
    if (mem && text) {
        status |= metrics_emit(ctx, output, path, text, len);
    }
    readiness_free(&rd);
    admin_status_free(&st);
    close_root(ctx);
    return status;
}

static int cli_dispatch(int argc, char **argv);

int cli_main(int argc, char **argv) {
    int status = cli_dispatch(argc, argv);
    /* Output that cannot be written (a full disk, a closed pipe) is a failure, not a silent
     * success. */
    bool text_failed = text_out() != stdout && (fflush(text_out()) != 0 || ferror(text_out()));
    if (text_failed || fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: error: cannot write the output: %s\n", PVH_PROG, strerror(errno));
        return status ? status : 1;
    }
    return status;
}

static int cli_dispatch(int argc, char **argv) {
    struct cli_ctx ctx = {.fs = {.rootfd = -1}, .real_fs = {.rootfd = -1}};
    ctx.root = getenv("PVE_VGPU_HOOK_ROOT");
    ctx.config_path = getenv("PVE_VGPU_HOOK_CONFIG");
    if (ctx.root && !*ctx.root) {
        ctx.root = NULL;
    }
    if (ctx.config_path && !*ctx.config_path) {
        ctx.config_path = NULL;
    }
    ctx.root_from_env = ctx.root != NULL;
    ctx.config_from_env = ctx.config_path != NULL;
    static const struct option longopts[] = {
        {"root", required_argument, NULL, 'r'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    int c;
    opterr = 0;
    optind = 0;
    /* "+": options stop at the command or the VMID, which have their own */
    while ((c = getopt_long(argc, argv, "+:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("pve-vgpu-hook %s\n", PVH_VERSION);
            return 0;
        case 'r':
            ctx.root = optarg;
            ctx.root_from_env = false;
            break;
        case 'c':
            if (!*optarg) {
                return usage_error("--config needs a file name");
            }
            ctx.config_path = optarg;
            ctx.config_from_env = false;
            break;
        case ':':
            return usage_error("option %s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    int i = optind;
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (looks_numeric(argv[i])) {
        return run_hook(&ctx, argc - i, argv + i);
    }
    if (!strcmp(argv[i], "help")) {
        if (i + 1 >= argc) {
            usage(stdout);
            return 0;
        }
        return cmd_help(argv[i + 1]);
    }
    const struct command *cmd = find_command(argv[i]);
    if (!cmd) {
        return usage_error("unknown command '%s'", argv[i]);
    }
    for (int k = i + 1; k < argc; k++) {
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
            return cmd_help(cmd->name);
        }
    }
    return cmd->run(&ctx, argc - i, argv + i); /* argv[0]: the command, as getopt wants */
}
