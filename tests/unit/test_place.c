/*
 * Placement (src/decide/place.c) as a pure function: every policy, first fit and pack/spread, reuse
 * and replace, reclaim as the last resort, and the plan's own devices counted, over host
 * models built by hand. No fake host, no I/O.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hostmodel.h"
#include "place.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct model_type P40[] = {
    {"nvidia-46", "GRID P40-1Q", 1024, 24},
    {"nvidia-47", "GRID P40-2Q", 2048, 12},
    {"nvidia-155", "GRID P40-1B", 1024, 24},
    {"nvidia-53", "GRID P40-24Q", 24576, 1},
};
#define NT (sizeof(P40) / sizeof(P40[0]))

/* An mdev resident in the model: on gpu, of type, owned by vmid in state. */
struct resident {
    size_t gpu;
    const char *type;
    unsigned long vmid;
    enum vm_state state;
};

/* ngpus P40s, one parent each; availability as an equal-size driver shows it. */
static void build(struct host *h, size_t ngpus, const struct resident *res, size_t nres) {
    model_build(h, ngpus, P40, NT, nres + 1);
    for (size_t g = 0; g < ngpus; g++) {
        unsigned hosted = 0, count = 0;
        for (size_t r = 0; r < nres; r++) {
            for (size_t t = 0; res[r].gpu == g && t < NT; t++) {
                if (!strcmp(P40[t].id, res[r].type)) {
                    hosted = P40[t].fb_mib;
                    count++;
                }
            }
        }
        for (size_t t = 0; hosted && t < NT; t++) {
            h->parents[g].types[t].available =
                P40[t].fb_mib == hosted ? (long)(P40[t].max - count) : 0;
        }
    }
    for (size_t r = 0; r < nres; r++) {
        model_add_mdev(h, res[r].gpu, res[r].type, res[r].vmid)->state = res[r].state;
    }
}

static void cands_of(struct place_candidates *c, const char *const *ids) {
    memset(c, 0, sizeof(*c));
    while (ids && ids[c->n]) {
        c->n++;
    }
    c->ids = calloc(c->n ? c->n : 1, sizeof(*c->ids));
    for (size_t i = 0; i < c->n; i++) {
        snprintf(c->ids[i], sizeof(c->ids[i]), "%s", ids[i]);
    }
}

static const char *const A[] = {"0000:06:00.0", NULL};
static const char *const B[] = {"0000:07:00.0", NULL};
static const char *const AB[] = {"0000:06:00.0", "0000:07:00.0", NULL};

static void test_cases(void **state) {
    (void)state;
    static const struct {
        const char *what;
        enum pvh_policy policy;
        enum pvh_placement placement;
        bool reclaim_stale, managed;
        struct resident res[4];
        size_t nres;
        const char *type[2];         /* one or two items of VM 100 */
        const char *const *cands[2]; /* NULL (managed): every GPU */
        int rc;
        const char *parent[2]; /* where each item goes */
        const char *reclaimed; /* the VM whose leftover is removed, or NULL */
        const char *why;       /* substring of the refusal */
    } cases[] = {
        {"empty GPU",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0}},
         0,
         {"nvidia-46"},
         {A},
         0,
         {"0000:06:00.0"},
         NULL,
         NULL},
        {"hostpci first fit: the mapping's next device",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-47", 101, VM_RUNNING}},
         1,
         {"nvidia-46"},
         {AB},
         0,
         {"0000:07:00.0"},
         NULL,
         NULL},
        {"auto: the driver says no, and why",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-47", 101, VM_RUNNING}},
         1,
         {"nvidia-46"},
         {A},
         -ENOSPC,
         {NULL},
         NULL,
         "the GPU is in equal-size mode: it takes only 2048 MiB"},
        {"auto: 1B beside 1Q, as the driver offers",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-46", 101, VM_RUNNING}},
         1,
         {"nvidia-155"},
         {A},
         0,
         {"0000:06:00.0"},
         NULL,
         NULL},
        {"equal-size policy with [Q,C] only: 1B refused by the admin's rule",
         POLICY_EQUAL_SIZE,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-46", 101, VM_RUNNING}},
         1,
         {"nvidia-155"},
         {A},
         -ENOSPC,
         {NULL},
         NULL,
         "series Q and B may not share"},
        {"homogeneous policy",
         POLICY_HOMOGENEOUS,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-46", 101, VM_RUNNING}},
         1,
         {"nvidia-155"},
         {A},
         -ENOSPC,
         {NULL},
         NULL,
         "homogeneous policy (your settings)"},
        {"two devices, one instance left: the plan counts its own",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-53", 101, VM_RUNNING}},
         0,
         {"nvidia-53", "nvidia-53"},
         {B, B},
         -ENOSPC,
         {"0000:07:00.0"},
         NULL,
         "no available instances of GRID P40-24Q"},
        {"two sizes on one idle GPU: the second is refused as the driver will",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0}},
         0,
         {"nvidia-46", "nvidia-47"},
         {A, A},
         -ENOSPC,
         {"0000:06:00.0"},
         NULL,
         "equal-size mode"},
        {"a stopped VM's leftover blocks: reclaimed",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-47", 101, VM_STOPPED}},
         1,
         {"nvidia-46"},
         {A},
         0,
         {"0000:06:00.0"},
         "101",
         NULL},
        {"reclaim is the last resort: a free GPU first",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-47", 101, VM_STOPPED}},
         1,
         {"nvidia-46"},
         {AB},
         0,
         {"0000:07:00.0"},
         NULL,
         NULL},
        {"a busy VM's device is no leftover",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-47", 101, VM_BUSY}},
         1,
         {"nvidia-46"},
         {A},
         -ENOSPC,
         {NULL},
         NULL,
         "for VM 101"},
        {"a running VM's device is never reclaimed",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-47", 101, VM_RUNNING}},
         1,
         {"nvidia-46"},
         {A},
         -ENOSPC,
         {NULL},
         NULL,
         NULL},
        {"reclaim_stale off",
         POLICY_AUTO,
         PLACEMENT_PACK,
         false,
         false,
         {{0, "nvidia-47", 101, VM_STOPPED}},
         1,
         {"nvidia-46"},
         {A},
         -ENOSPC,
         {NULL},
         NULL,
         NULL},
        {"a leftover that would not help stays",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         false,
         {{0, "nvidia-47", 101, VM_STOPPED}, {0, "nvidia-47", 102, VM_RUNNING}},
         2,
         {"nvidia-46"},
         {A},
         -ENOSPC,
         {NULL},
         NULL,
         NULL},
        {"managed pack: beside the same size",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         true,
         {{1, "nvidia-46", 101, VM_RUNNING}},
         1,
         {"nvidia-46"},
         {NULL},
         0,
         {"0000:07:00.0"},
         NULL,
         NULL},
        {"managed spread: the emptiest",
         POLICY_AUTO,
         PLACEMENT_SPREAD,
         true,
         true,
         {{1, "nvidia-46", 101, VM_RUNNING}},
         1,
         {"nvidia-46"},
         {NULL},
         0,
         {"0000:06:00.0"},
         NULL,
         NULL},
        {"managed: every candidate says why",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         true,
         {{0, "nvidia-47", 101, VM_RUNNING}, {1, "nvidia-47", 102, VM_RUNNING}},
         2,
         {"nvidia-46"},
         {NULL},
         -ENOSPC,
         {NULL},
         NULL,
         "no candidate GPU can take it:\n  0000:06:00.0: "},
        {"no GPU offers the type",
         POLICY_AUTO,
         PLACEMENT_PACK,
         true,
         true,
         {{0}},
         0,
         {"nvidia-999"},
         {NULL},
         -ENODEV,
         {NULL},
         NULL,
         "no GPU on node pve1 offers nvidia-999"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct host h;
        build(&h, 2, cases[i].res, cases[i].nres);
        struct pvh_config cfg;
        config_defaults(&cfg);
        cfg.policy = cases[i].policy;
        cfg.placement = cases[i].placement;
        cfg.reclaim_stale = cases[i].reclaim_stale;
        if (cfg.policy == POLICY_EQUAL_SIZE) {
            strcpy(cfg.series_groups[0], "QC");
        }
        struct planned_mdev items[2] = {0};
        struct place_candidates cands[2];
        size_t n = cases[i].type[1] ? 2 : 1;
        for (size_t k = 0; k < n; k++) {
            items[k].index = (unsigned)k;
            mdev_uuid_for(100, (unsigned)k, items[k].uuid);
            snprintf(items[k].type_id, sizeof(items[k].type_id), "%s", cases[i].type[k]);
            cands_of(&cands[k], cases[i].cands[k]);
        }
        struct placement pl = {
            .cfg = &cfg,
            .host = &h,
            .vmid = 100,
            .node = "pve1",
            .managed = cases[i].managed,
            .items = items,
            .cands = cands,
            .n = n};
        int rc = place_vgpus(&pl);
        if (rc != cases[i].rc || (cases[i].why && !strstr(pl.why, cases[i].why))) {
            fail_msg("%s: rc %d, why:\n%s", cases[i].what, rc, pl.why);
        }
        for (size_t k = 0; k < n && cases[i].parent[k]; k++) {
            if (items[k].parent == NO_INDEX ||
                strcmp(h.parents[items[k].parent].bdf, cases[i].parent[k])) {
                fail_msg("%s: item %zu not on %s", cases[i].what, k, cases[i].parent[k]);
            }
        }
        for (size_t m = 0; rc == 0 && m < cases[i].nres; m++) {
            char vm[16];
            snprintf(vm, sizeof(vm), "%lu", h.mdevs[m].vmid);
            bool want = cases[i].reclaimed && !strcmp(vm, cases[i].reclaimed);
            if (pl.reclaim[m] != want) {
                fail_msg("%s: reclaim of VM %s is %d", cases[i].what, vm, pl.reclaim[m]);
            }
        }
        for (size_t k = 0; k < n; k++) {
            place_candidates_free(&cands[k]);
        }
        placement_free(&pl);
        inventory_free(&h);
    }
}

/* The VM's own devices: reused when they fit, replaced when not, removed when no longer
 * configured; and a VF of NVIDIA's vendor interface is left to Proxmox. */
static void test_own_devices_and_vendor_iface(void **state) {
    (void)state;
    const struct resident res[] = {
        {0, "nvidia-46", 100, VM_STOPPED}, /* 00000000-...-100: hostpci0's UUID */
    };
    struct host h;
    build(&h, 2, res, 1);
    /* an old hostpci1 device of VM 100, no longer in the config */
    struct inv_mdev *old = &h.mdevs[h.nmdevs++];
    *old = h.mdevs[0];
    mdev_uuid_for(100, 1, old->uuid);
    old->index = 1;
    struct pvh_config cfg;
    config_defaults(&cfg);
    struct planned_mdev it = {.index = 0};
    mdev_uuid_for(100, 0, it.uuid);
    snprintf(it.type_id, sizeof(it.type_id), "P40-1Q");
    it.existing = h.mdevs[0];
    struct place_candidates c;
    cands_of(&c, A);
    struct placement pl = {
        .cfg = &cfg, .host = &h, .vmid = 100, .node = "pve1", .items = &it, .cands = &c, .n = 1};
    assert_int_equal(place_vgpus(&pl), 0);
    assert_int_equal(it.action, ACT_REUSE);
    assert_string_equal(it.type_id, "nvidia-46");
    assert_false(pl.reclaim[0]);
    assert_true(pl.reclaim[1]); /* the old hostpci1 device goes */
    placement_free(&pl);
    /* the same UUID with another type: replaced */
    snprintf(it.type_id, sizeof(it.type_id), "nvidia-47");
    it.action = ACT_CREATE;
    assert_int_equal(place_vgpus(&pl), 0);
    assert_int_equal(it.action, ACT_REPLACE);
    placement_free(&pl);
    place_candidates_free(&c);
    inventory_free(&h);

    /* NVIDIA's vendor interface: no mdev parent, the VF offers the type */
    build(&h, 1, NULL, 0);
    static const char *const vf[] = {"0000:81:00.4", NULL};
    cands_of(&c, vf);
    c.iface = calloc(1, sizeof(*c.iface));
    c.iface[0] = calloc(1, sizeof(**c.iface));
    c.iface[0]->creatable = calloc(1, sizeof(*c.iface[0]->creatable));
    c.iface[0]->creatable[0] = (struct nvidia_iface_type){.id = 1414, .name = "NVIDIA L40S-2Q"};
    c.iface[0]->ncreatable = 1;
    struct planned_mdev vit = {.index = 0};
    snprintf(vit.type_id, sizeof(vit.type_id), "nvidia-1414");
    pl = (struct placement
    ){.cfg = &cfg, .host = &h, .vmid = 100, .node = "pve1", .items = &vit, .cands = &c, .n = 1};
    assert_int_equal(place_vgpus(&pl), 0);
    assert_int_equal(vit.action, ACT_PROXMOX);
    assert_string_equal(vit.vf, "0000:81:00.4");
    placement_free(&pl);
    /* a VF another VM's QEMU uses is skipped, as Proxmox skips it in a mapping */
    c.iface[0]->used_by = 101;
    assert_int_equal(place_vgpus(&pl), -ENODEV);
    assert_non_null(strstr(pl.why, "0000:81:00.4 (NVIDIA's vendor interface) is in use by VM 101"));
    placement_free(&pl);
    c.iface[0]->used_by = 100; /* its own (a restart): fine */
    assert_int_equal(place_vgpus(&pl), 0);
    placement_free(&pl);
    c.iface[0]->used_by = 0;
    snprintf(vit.type_id, sizeof(vit.type_id), "nvidia-1415");
    assert_int_equal(place_vgpus(&pl), -ENODEV);
    assert_true(pl.saw_vendor_iface);
    assert_non_null(strstr(pl.why, "creatable there now: nvidia-1414 (NVIDIA L40S-2Q)"));
    placement_free(&pl);
    place_candidates_free(&c);
    inventory_free(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_own_devices_and_vendor_iface),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
