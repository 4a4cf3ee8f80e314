#include "hook.h"

#include "cleanup.h"
#include "rules.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---------- small helpers ---------- */

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int errno_exit(int r) {
    return r < 0 ? 1 : 0;
}

/* ---------- acting on sysfs ---------- */

static int remove_mdev(const struct hostfs *fs, const char *uuid) {
    char path[PATH_MAX];
    int r = path_fmt(path, sizeof(path), "/sys/bus/mdev/devices/%s/remove", uuid);
    if (r < 0) {
        return r;
    }
    r = hostfs_write_str(fs, path, "1");
    return r == -ENOENT ? 0 : r; /* already gone is what we wanted */
}

static int create_mdev(
    const struct hook_env *env, const struct vm_plan *p, const struct planned_mdev *it,
    struct pvh_err *e
) {
    const char *parent = p->host.parents[it->parent].bdf;
    char path[PATH_MAX];
    int r = path_fmt(
        path, sizeof(path), "/sys/bus/pci/devices/%s/mdev_supported_types/%s/create", parent,
        it->type_id
    );
    if (r < 0) {
        return err_set(e, r, "path too long");
    }
    r = hostfs_write_str(env->fs, path, it->uuid);
    if (r == 0) {
        return 0;
    }
    if (r == -EEXIST) {
        struct inv_mdev other;
        if (inventory_mdev_lookup(env->fs, it->uuid, &other) == 0) {
            err_set(
                e, r,
                "cannot create %s on %s: UUID %s is already used by an mdev of type %s "
                "on %s (mdev UUIDs are unique host-wide)",
                it->type_id, parent, it->uuid, other.type_id, other.parent_bdf
            );
        } else {
            err_set(
                e, r, "cannot create %s on %s: UUID %s is already in use", it->type_id, parent,
                it->uuid
            );
        }
        err_hint(
            e,
            "if VM %lu is not running, remove the old device: 'pve-vgpu-hook cleanup' or "
            "'echo 1 > /sys/bus/mdev/devices/%s/remove'",
            p->vmid, it->uuid
        );
        return r;
    }
    char avail_path[PATH_MAX];
    long avail = -1;
    if (path_fmt(
            avail_path, sizeof(avail_path),
            "/sys/bus/pci/devices/%s/mdev_supported_types/%s/available_instances", parent,
            it->type_id
        ) == 0) {
        (void)hostfs_read_long(env->fs, avail_path, &avail);
    }
    if (r == -ENOENT) {
        err_set(
            e, r, "cannot create %s on %s: the type directory has disappeared", it->type_id, parent
        );
        err_hint(e, "the vGPU driver may have been reloaded; check 'pve-vgpu-hook types'");
    } else if (r == -EINVAL) {
        err_set(
            e, r, "the kernel rejected creating %s on %s with UUID %s: %s", it->type_id, parent,
            it->uuid, strerror(-r)
        );
        err_hint(
            e,
            "the driver refused the request; available_instances reads %ld; see the "
            "kernel log ('journalctl -k') for the driver's reason",
            avail
        );
    } else {
        err_set(
            e, r,
            "the driver refused to create %s on %s: %s (available_instances now "
            "reads %ld)",
            it->type_id, parent, strerror(-r), avail
        );
        err_hint(
            e, "the GPU is full or holds vGPUs of another size; 'pve-vgpu-hook status' "
               "shows what it hosts"
        );
    }
    return r;
}

/* Reclaim leftovers, replace, create; on failure remove what this run created. */
static int execute_plan(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    struct host *h = &p->host;
    int r = 0;
    for (size_t m = 0; m < h->nmdevs; m++) {
        if (!p->reclaim[m]) {
            continue;
        }
        const struct inv_mdev *md = &h->mdevs[m];
        if ((r = remove_mdev(env->fs, md->uuid)) < 0) {
            err_set(
                e, r, "cannot remove leftover mdev %s (VM %lu, %s on %s): %s", md->uuid, md->vmid,
                md->type_id, md->parent_bdf, strerror(-r)
            );
            err_hint(e, "a process may still use it; check 'lsof /dev/vfio/*'");
            return r;
        }
        if (md->vmid == p->vmid) {
            log_msg(
                LOG_LVL_INFO, "removed its old mdev %s (%s on %s), no longer in the config",
                md->uuid, md->type_id, md->parent_bdf
            );
        } else {
            log_msg(
                LOG_LVL_INFO,
                "removed leftover mdev %s of stopped VM %lu (%s on %s) that "
                "blocked placement",
                md->uuid, md->vmid, md->type_id, md->parent_bdf
            );
        }
    }
    size_t done;
    for (done = 0; done < p->n; done++) {
        struct planned_mdev *it = &p->items[done];
        if (it->action == ACT_PROXMOX) {
            log_msg(
                LOG_LVL_INFO,
                "%s uses NVIDIA's vendor interface: Proxmox sets %s on it "
                "itself (it is creatable there now)",
                it->vf, it->type_id
            );
            continue;
        }
        const char *parent = h->parents[it->parent].bdf;
        if (it->action == ACT_REUSE) {
            log_msg(
                LOG_LVL_INFO, "mdev %s (%s) already exists on %s; reusing it", it->uuid,
                it->type_id, parent
            );
            continue;
        }
        if (it->action == ACT_REPLACE) {
            if ((r = remove_mdev(env->fs, it->uuid)) < 0) {
                err_set(
                    e, r, "cannot remove the old mdev %s (%s on %s): %s", it->uuid,
                    it->existing.type_id, it->existing.parent_bdf, strerror(-r)
                );
                break;
            }
            log_msg(
                LOG_LVL_INFO, "removed old mdev %s (%s on %s) to recreate it as configured",
                it->uuid, it->existing.type_id, it->existing.parent_bdf
            );
        }
        if ((r = create_mdev(env, p, it, e)) < 0) {
            break;
        }
        const struct inv_type *ty = inv_parent_type(h, it->parent, it->type_id);
        const struct inv_typedef *d = ty ? inv_def(h, ty) : NULL;
        log_msg(
            LOG_LVL_INFO, "created mdev %s (%s%s%s%s) on %s", it->uuid, it->type_id,
            d && d->name[0] ? ", " : "", d ? d->name : "", "", parent
        );
    }
    if (done == p->n) {
        return 0;
    }
    /* Leave the host as it was: undo the devices this run created. */
    for (size_t i = 0; i < done; i++) {
        const struct planned_mdev *it = &p->items[i];
        if (it->action != ACT_REUSE && it->action != ACT_PROXMOX &&
            remove_mdev(env->fs, it->uuid) == 0) {
            log_msg(LOG_LVL_INFO, "removed mdev %s again (start refused)", it->uuid);
        }
    }
    return r;
}

static int write_args(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    int r = pveconf_set(&p->conf, "args", p->new_args);
    if (r < 0) {
        return err_set(e, r, "cannot set args: %s", strerror(-r));
    }
    size_t len;
    _cleanup_free_ char *text = pveconf_serialize(&p->conf, &len);
    if (!text) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    r = hostfs_replace_file(env->fs, p->conf_path, text, len, 0640);
    if (r < 0) {
        err_set(
            e, r, "VM %lu needs '-uuid %s' in args (%s), but %s cannot be written: %s", p->vmid,
            p->want_uuid, p->uuid_reason, p->conf_path, strerror(-r)
        );
        if (r == -EACCES || r == -EROFS || r == -EPERM) {
            err_hint(
                e,
                "/etc/pve is read-only without cluster quorum ('pvecm status'); restore "
                "quorum, or add it by hand: qm set %lu --args '%s'",
                p->vmid, p->new_args
            );
        } else {
            err_hint(e, "add it by hand: qm set %lu --args '%s'", p->vmid, p->new_args);
        }
    }
    return r;
}

/* ---------- admin commands ---------- */

void hook_status_free(struct host_status *st) {
    config_free(&st->cfg);
    inventory_free(&st->host);
    free(st->running);
    free(st->missing);
    free(st->nvidia);
    warn_free(&st->warnings);
    st->running = NULL;
    st->missing = NULL;
    st->nvidia = NULL;
}

/* The vGPUs a VM's config asks for: its hostpci mdev entries, or its managed entry. */
static void expected_vgpus(
    const struct hook_env *env, const struct pvh_config *cfg, unsigned long vmid,
    struct host_status *st
) {
    char path[128];
    snprintf(path, sizeof(path), "/etc/pve/qemu-server/%lu.conf", vmid);
    _cleanup_free_ char *text = NULL;
    size_t len;
    struct pveconf conf;
    if (hostfs_read_alloc(env->fs, path, CONFIG_MAX_BYTES, &text, &len) < 0 ||
        pveconf_parse(text, len, &conf) < 0) {
        return;
    }
    struct missing_vgpu want[HOSTPCI_MAX + 1];
    struct hostpci hps[HOSTPCI_MAX];
    size_t n = 0;
    (void)hostpci_mdev_entries(&conf, hps, &n, NULL, NULL); /* malformed lines are pre-start's */
    pveconf_free(&conf);
    for (size_t i = 0; i < n; i++) {
        want[i] = (struct missing_vgpu){.vmid = vmid, .index = hps[i].index};
        snprintf(want[i].type, sizeof(want[i].type), "%s", hps[i].mdev);
    }
    const struct vm_settings *vs = config_vm(cfg, vmid);
    if (vs && n == 0) {
        want[n] = (struct missing_vgpu){.vmid = vmid, .index = vs->index};
        snprintf(want[n].type, sizeof(want[n].type), "%s", vs->type);
        n++;
    }
    for (size_t i = 0; i < n; i++) {
        char dev[128];
        mdev_uuid_for(vmid, want[i].index, want[i].uuid);
        snprintf(dev, sizeof(dev), "/sys/bus/mdev/devices/%s", want[i].uuid);
        if (hostfs_exists(env->fs, dev) == 0) {
            continue;
        }
        struct missing_vgpu *nm = realloc(st->missing, (st->nmissing + 1) * sizeof(*nm));
        if (!nm) {
            return;
        }
        st->missing = nm;
        st->missing[st->nmissing++] = want[i];
    }
}

int hook_status(const struct hook_env *env, struct host_status *st, struct pvh_err *e) {
    memset(st, 0, sizeof(*st));
    config_defaults(&st->cfg);
    if (node_name(env->fs, st->node, sizeof(st->node)) < 0) {
        snprintf(st->node, sizeof(st->node), "localhost");
    }
    config_free(&st->cfg);
    int r = load_settings(env, &st->cfg, &st->warnings, e);
    if (r < 0) {
        return r;
    }
    if ((r = inventory_load_all(env->fs, &st->host, e)) < 0) {
        return r;
    }
    if (inventory_nvidia_gpus(env->fs, &st->nvidia, &st->nnvidia) < 0) {
        warn_add(&st->warnings, "cannot scan /sys/bus/pci/devices for NVIDIA's vendor interface");
    }
    st->running = calloc(st->host.nmdevs ? st->host.nmdevs : 1, sizeof(*st->running));
    if (!st->running) {
        return err_set(e, -ENOMEM, "out of memory");
    }
    for (size_t m = 0; m < st->host.nmdevs; m++) {
        const struct inv_mdev *md = &st->host.mdevs[m];
        st->running[m] = md->owned ? (signed char)vm_is_running(env->fs, md->vmid) : -1;
    }
    /* Running VMs of this node whose vGPU is not there. */
    struct hostfs_list l;
    if (hostfs_list(env->fs, "/etc/pve/qemu-server", &l) == 0) {
        for (size_t i = 0; i < l.n; i++) {
            char id[16];
            unsigned long vmid;
            size_t nl = strlen(l.names[i]);
            if (nl < 6 || nl - 5 >= sizeof(id) || strcmp(l.names[i] + nl - 5, ".conf")) {
                continue;
            }
            snprintf(id, sizeof(id), "%.*s", (int)(nl - 5), l.names[i]);
            if (vmid_parse(id, &vmid) && vm_is_running(env->fs, vmid)) {
                expected_vgpus(env, &st->cfg, vmid, st);
            }
        }
        hostfs_list_free(&l);
    }
    return 0;
}

int hook_cleanup(
    const struct hook_env *env, bool dry_run, struct cleanup_item **items, size_t *n,
    struct pvh_warnings *w, struct pvh_err *e
) {
    *items = NULL;
    *n = 0;
    int lock = -1;
    if (!dry_run) {
        lock = hostfs_lock(env->fs, HOST_LOCK_PATH, HOST_LOCK_TIMEOUT_MS);
        if (lock < 0) {
            err_set(e, lock, "cannot take the host lock %s: %s", HOST_LOCK_PATH, strerror(-lock));
            err_hint(e, "another pve-vgpu-hook is busy; try again in a minute");
            return lock;
        }
    }
    struct inv_mdev *all = NULL;
    size_t nall = 0;
    int r = inventory_vm_mdevs(env->fs, 0, &all, &nall, w);
    if (r < 0) {
        hostfs_unlock(lock);
        return err_set(e, r, "cannot list /sys/bus/mdev/devices: %s", strerror(-r));
    }
    struct cleanup_item *out = calloc(nall ? nall : 1, sizeof(*out));
    if (!out) {
        free(all);
        hostfs_unlock(lock);
        return err_set(e, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nall; i++) {
        struct cleanup_item *it = &out[i];
        it->mdev = all[i];
        if (!it->mdev.owned) {
            it->verdict = CLEAN_NOT_OURS;
        } else if (vm_is_running(env->fs, it->mdev.vmid)) {
            it->verdict = CLEAN_KEPT_RUNNING;
        } else if (vm_is_busy(env->fs, it->mdev.vmid)) {
            it->verdict = CLEAN_KEPT_BUSY;
        } else if (dry_run) {
            it->verdict = CLEAN_WOULD_REMOVE;
        } else if ((it->err = remove_mdev(env->fs, it->mdev.uuid)) < 0) {
            it->verdict = CLEAN_FAILED;
        } else {
            it->verdict = CLEAN_REMOVED;
        }
    }
    free(all);
    hostfs_unlock(lock);
    *items = out;
    *n = nall;
    return 0;
}

/* ---------- chained hooks ---------- */

/* run-parts names only: [A-Za-z0-9_-]+ (skips *.dpkg-old, editor backups, ...) */
static bool runparts_name(const char *n) {
    if (!*n) {
        return false;
    }
    for (; *n; n++) {
        if (!isalnum((unsigned char)*n) && *n != '_' && *n != '-') {
            return false;
        }
    }
    return true;
}

/* Run the executables of HOOKS_DIR with the same VMID, phase and environment, in order.
 * stop_at_failure: pre-start stops at the first failing hook. Returns the number that failed. */
static int run_chained(
    const struct hook_env *env, unsigned long vmid, const char *phase, bool stop_at_failure
) {
    struct hostfs_list l;
    if (hostfs_list(env->fs, HOOKS_DIR, &l) < 0) {
        return 0; /* no hooks.d: nothing chained */
    }
    int failed = 0;
    char id[16];
    snprintf(id, sizeof(id), "%lu", vmid);
    for (size_t i = 0; i < l.n && !(failed && stop_at_failure); i++) {
        char path[PATH_MAX];
        mode_t mode;
        if (!runparts_name(l.names[i]) ||
            path_fmt(path, sizeof(path), "%s/%s", HOOKS_DIR, l.names[i]) < 0 ||
            hostfs_stat(env->fs, path, &mode, NULL) < 0 || !S_ISREG(mode) || !(mode & 0111)) {
            continue;
        }
        char *argv[] = {path, id, (char *)phase, NULL};
        int status;
        int r = hostfs_run(env->fs, path, argv, &status);
        if (r < 0) {
            log_msg(LOG_LVL_ERROR, "cannot run chained hook %s: %s", path, strerror(-r));
            failed++;
        } else if (status) {
            log_msg(
                LOG_LVL_ERROR, "chained hook %s failed on %s (exit status %d)", path, phase, status
            );
            failed++;
        }
    }
    hostfs_list_free(&l);
    return failed;
}

/* ---------- phases ---------- */

static int phase_pre_start(const struct hook_env *env, unsigned long vmid) {
    struct pvh_err e = {0};
    int lock = hostfs_lock(env->fs, HOST_LOCK_PATH, HOST_LOCK_TIMEOUT_MS);
    if (lock < 0) {
        err_set(&e, lock, "cannot take the host lock %s: %s", HOST_LOCK_PATH, strerror(-lock));
        err_hint(
            &e,
            lock == -ETIMEDOUT ? "another pve-vgpu-hook has held it for %d s; check "
                                 "'ps aux | grep pve-vgpu-hook'"
                               : "check that /run/lock exists and is writable (%d)",
            HOST_LOCK_TIMEOUT_MS / 1000
        );
        log_err(&e);
        return 1;
    }
    struct vm_plan p;
    int r = plan_pre_start(env, vmid, &p, &e);
    log_warnings(&p.host.warnings);
    log_warnings(&p.warnings);
    if (r == NOT_A_VM) {
        log_msg(LOG_LVL_INFO, "not a VM (container), nothing to do");
        r = 0;
    } else if (r < 0) {
        log_err(&e);
    } else if (p.n == 0) {
        log_msg(LOG_LVL_INFO, "no vGPU in the VM config, nothing to do");
    } else if (p.args_change && p.migrating) {
        log_msg(
            LOG_LVL_WARN,
            "args lacks '-uuid %s' (%s); not changing the config during a "
            "migration",
            p.want_uuid, p.uuid_reason
        );
        r = execute_plan(env, &p, &e);
    } else if (p.args_change) {
        r = write_args(env, &p, &e);
        if (r < 0) {
            log_err(&e);
        } else {
            log_msg(
                LOG_LVL_ERROR, "added '-uuid %s' to args in %s (%s)", p.want_uuid, p.conf_path,
                p.uuid_reason
            );
            log_msg(
                LOG_LVL_INFO, "what to do: start the VM once more; Proxmox read the config "
                              "before this hook ran, so this start cannot use the change"
            );
            r = -EAGAIN;
        }
    } else {
        r = execute_plan(env, &p, &e);
        if (r < 0) {
            log_err(&e);
        }
    }
    hostfs_unlock(lock);
    /* Chained hooks run after our own work succeeded (another pre-start failure stops the
     * start anyway). One that fails stops the start: undo what this run created first. */
    if (r == 0 && run_chained(env, vmid, "pre-start", true)) {
        int relock = hostfs_lock(env->fs, HOST_LOCK_PATH, HOST_LOCK_TIMEOUT_MS);
        for (size_t i = 0; i < p.n; i++) {
            if (p.items[i].action != ACT_REUSE && p.items[i].action != ACT_PROXMOX &&
                remove_mdev(env->fs, p.items[i].uuid) == 0) {
                log_msg(LOG_LVL_INFO, "removed mdev %s again (start refused)", p.items[i].uuid);
            }
        }
        hostfs_unlock(relock);
        log_msg(LOG_LVL_INFO, "what to do: fix the chained hook or move it out of %s", HOOKS_DIR);
        r = -ECANCELED;
    }
    plan_free(&p);
    return errno_exit(r);
}

static int phase_post_stop(const struct hook_env *env, unsigned long vmid) {
    struct pvh_err e = {0};
    struct pvh_warnings w = {0};
    struct pvh_config cfg;
    if (load_settings(env, &cfg, &w, &e) < 0) {
        /* Cleaning up matters more than settings: go on with defaults. */
        log_msg(LOG_LVL_WARN, "%s; using default settings", e.msg);
        config_defaults(&cfg);
    }
    int wait_s = cfg.remove_wait_s;
    config_free(&cfg);
    if (vm_is_running(env->fs, vmid)) {
        log_msg(LOG_LVL_INFO, "VM is running again; leaving its vGPUs in place");
        warn_free(&w);
        return 0;
    }
    struct inv_mdev *mine = NULL;
    size_t n = 0;
    int r = inventory_vm_mdevs(env->fs, vmid, &mine, &n, &w);
    log_warnings(&w);
    warn_free(&w);
    if (r < 0) {
        log_msg(LOG_LVL_ERROR, "cannot list /sys/bus/mdev/devices: %s", strerror(-r));
        return 1;
    }
    /* NVIDIA's driver removes its mdevs itself shortly after QEMU exits; removing one first
     * has broken drivers (qemu-server 49c51a60). Poll rather than sleep blindly. */
    long deadline = now_ms() + wait_s * 1000L;
    char path[PATH_MAX];
    /* Which devices sit on NVIDIA GPUs: only those are worth waiting for. Known once. */
    bool *nvidia = calloc(n ? n : 1, sizeof(*nvidia));
    if (!nvidia) {
        free(mine);
        log_msg(LOG_LVL_ERROR, "out of memory");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        nvidia[i] = inventory_pci_is_nvidia(env->fs, mine[i].parent_bdf);
    }
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++) {
            if (!mine[i].uuid[0]) {
                continue;
            }
            if (path_fmt(path, sizeof(path), "/sys/bus/mdev/devices/%s", mine[i].uuid) == 0 &&
                hostfs_lexists(env->fs, path) < 0) {
                log_msg(LOG_LVL_INFO, "mdev %s was removed by its driver", mine[i].uuid);
                mine[i].uuid[0] = '\0';
                continue;
            }
            left += nvidia[i];
        }
        if (!left || now_ms() >= deadline) {
            break;
        }
        sleep_ms(100);
    }
    free(nvidia);
    int lock = hostfs_lock(env->fs, HOST_LOCK_PATH, HOST_LOCK_TIMEOUT_MS);
    if (lock < 0) {
        log_msg(
            LOG_LVL_ERROR,
            "cannot take the host lock %s: %s; run 'pve-vgpu-hook cleanup' "
            "later",
            HOST_LOCK_PATH, strerror(-lock)
        );
        free(mine);
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mine[i].uuid[0]) {
            continue;
        }
        /* Proxmox may have started the VM again meanwhile (a reboot): keep its devices. */
        if (vm_is_running(env->fs, vmid)) {
            log_msg(LOG_LVL_INFO, "VM is running again; leaving its vGPUs in place");
            break;
        }
        r = remove_mdev(env->fs, mine[i].uuid);
        if (r < 0) {
            log_msg(
                LOG_LVL_ERROR,
                "cannot remove mdev %s (%s on %s): %s; run 'pve-vgpu-hook "
                "cleanup' later",
                mine[i].uuid, mine[i].type_id, mine[i].parent_bdf, strerror(-r)
            );
            failed = 1;
        } else {
            log_msg(
                LOG_LVL_INFO, "removed mdev %s (%s on %s)", mine[i].uuid, mine[i].type_id,
                mine[i].parent_bdf
            );
        }
    }
    hostfs_unlock(lock);
    free(mine);
    return failed;
}

int hook_run(const struct hook_env *env, unsigned long vmid, const char *phase) {
    if (!strcmp(phase, "pre-start")) {
        return phase_pre_start(env, vmid);
    }
    int status = 0;
    if (!strcmp(phase, "post-stop")) {
        status = phase_post_stop(env, vmid);
    } else if (strcmp(phase, "post-start") && strcmp(phase, "pre-stop")) {
        log_msg(
            LOG_LVL_WARN,
            "unknown phase '%s' ignored (known: pre-start, post-start, "
            "pre-stop, post-stop)",
            phase
        );
    }
    /* In the other phases a failing chained hook is reported and the rest still run. */
    return run_chained(env, vmid, phase, false) ? 1 : status;
}
