#include "hook.h"

#include "cluster.h"

#include "managed.h"
#include "mdev.h"
#include "mistakes.h"

#include "cleanup.h"
#include "hostpaths.h"
#include "leftover.h"
#include "rules.h"
#include "strutil.h"
#include "vmconf.h"
#include "vmstate.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---------- small helpers ---------- */

static int errno_exit(int r) {
    return r < 0 ? 1 : 0;
}

/* Leave the host as it was: remove the devices that the first n items of this run created. */
static void undo_created(const struct hook_env *env, const struct vm_plan *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const struct planned_mdev *it = &p->items[i];
        if (it->action != ACT_REUSE && it->action != ACT_PROXMOX &&
            mdev_remove(env->fs, it->uuid) == 0) {
            log_msg(LOG_LVL_INFO, "removed mdev %s again (start refused)", it->uuid);
        }
    }
}

/* How long a create waits after this start removed a device for the driver to offer the room. */
#define HOOK_RELEASE_WAIT_MS 2000

/* After a removal, the plan's room is a prediction: ask the driver before creating, and refuse
 * with the placement's reason while it still offers no instance. */
static int await_room(
    const struct hook_env *env, const struct vm_plan *p, const struct planned_mdev *it,
    const char *parent, struct pvh_err *e
) {
    long avail;
    int r = mdev_await_available(env->fs, parent, it->type_id, HOOK_RELEASE_WAIT_MS, &avail);
    if (r < 0 || avail > 0) {
        return 0; /* unreadable: the create itself says what the driver thinks */
    }
    char hosts[512];
    rules_describe_residents(
        &p->host, p->host.parents[it->parent].gpu, p->reclaim, hosts, sizeof(hosts)
    );
    err_set(
        e, -ENOSPC,
        "cannot place %s for hostpci%u: this start removed a device on %s to make room, but the "
        "driver still offers no instance of %s there (available_instances reads 0 after %d s)\n"
        "  it hosts: %s",
        it->type_id, it->index, parent, it->type_id, HOOK_RELEASE_WAIT_MS / 1000, hosts
    );
    err_hint(
        e,
        "the driver may still be releasing the removed device: start VM %lu again in a few "
        "seconds; 'pve-vgpu-hook status' shows what the GPU hosts",
        p->vmid
    );
    return -ENOSPC;
}

/* Remove the leftovers the plan reclaims; *removed tells whether any was. */
static int
reclaim_leftovers(const struct hook_env *env, struct vm_plan *p, bool *removed, struct pvh_err *e) {
    struct host *h = &p->host;
    int r = 0;
    for (size_t m = 0; m < h->nmdevs; m++) {
        if (!p->reclaim[m]) {
            continue;
        }
        *removed = true;
        const struct inv_mdev *md = &h->mdevs[m];
        if ((r = mdev_remove(env->fs, md->uuid)) < 0) {
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
    return 0;
}

/* Reclaim leftovers, replace, create; on failure remove what this run created. */
static int execute_plan(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    struct host *h = &p->host;
    bool removed = false;
    int r = reclaim_leftovers(env, p, &removed, e);
    if (r < 0) {
        return r;
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
            if ((r = mdev_remove(env->fs, it->uuid)) < 0) {
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
        if ((removed || it->action == ACT_REPLACE) && (r = await_room(env, p, it, parent, e)) < 0) {
            break;
        }
        if ((r = mdev_create(env->fs, h->parents[it->parent].bdf, it->type_id, it->uuid, p->vmid, e)
            ) < 0) {
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
    undo_created(env, p, done);
    return r;
}

/* "qm set VMID --args '...'" with args quoted for the shell, when short enough to be read. */
static void args_by_hand_hint(struct pvh_err *e, const struct vm_plan *p, const char *why) {
    _cleanup_free_ char *q = str_shell_quote(p->new_args);
    if (q && strlen(q) < 400) {
        err_hint(e, "%sadd it by hand: qm set %lu --args %s", why, p->vmid, q);
    } else {
        err_hint(
            e,
            "%sadd it by hand: append ' -uuid %s' to the VM's args ('qm config %lu' shows "
            "them; 'qm set %lu --args ...' sets them)",
            why, p->want_uuid, p->vmid, p->vmid
        );
    }
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
        args_by_hand_hint(
            e, p,
            r == -EACCES || r == -EROFS || r == -EPERM
                ? "/etc/pve is read-only without cluster quorum ('pvecm status'); restore quorum, "
                  "or "
                : ""
        );
    }
    return r;
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

/* Run the executables of HOOKS_DIR with the same VMID, phase and environment, in order, each
 * for at most timeout_s. They run as root, so one that someone else could have changed is not
 * run (and counts as failed). stop_at_failure: pre-start stops at the first failing hook.
 * Returns the number that failed. */
static int run_chained(
    const struct hook_env *env, unsigned long vmid, const char *phase, int timeout_s,
    bool stop_at_failure
) {
    struct hostfs_list l;
    if (hostfs_list(env->fs, HOOKS_DIR, &l) < 0) {
        return 0; /* no hooks.d: nothing chained */
    }
    int failed = 0;
    char id[16];
    snprintf(id, sizeof(id), "%lu", vmid);
    for (size_t i = 0; i < l.n && !(failed && stop_at_failure); i++) {
        char path[PATH_MAX], why[PATH_MAX + 64];
        mode_t mode;
        if (!runparts_name(l.names[i]) ||
            str_fmt(path, sizeof(path), "%s/%s", HOOKS_DIR, l.names[i]) < 0 ||
            hostfs_stat(env->fs, path, &mode, NULL) < 0 || !S_ISREG(mode) || !(mode & 0111)) {
            continue; /* run-parts' rule: only executables with such names */
        }
        if (hookscript_is_ours(env->fs, path)) {
            log_msg(
                LOG_LVL_ERROR,
                "chained hook %s is pve-vgpu-hook itself (the snippet, copied): not run, since it "
                "would run %s again, without end; what to do: remove it (rm %s), this hook does "
                "its work already",
                path, HOOKS_DIR, path
            );
            continue;
        }
        char *argv[] = {path, id, (char *)phase, NULL};
        int status;
        /* a nested pve-vgpu-hook (in a wrapper script) sees it and refuses: see hook_run */
        setenv(HOOK_DEPTH_ENV, path, 1);
        int r =
            hostfs_run_trusted(env->fs, path, argv, timeout_s * 1000, &status, why, sizeof(why));
        unsetenv(HOOK_DEPTH_ENV);
        if (r == -EPERM && why[0]) {
            log_msg(
                LOG_LVL_ERROR,
                "chained hook %s is not run: %s, so someone other than root could change what "
                "runs as root",
                path, why
            );
            log_msg(
                LOG_LVL_INFO,
                "what to do: make it and every directory above it root's and not writable by "
                "group or others (chown root:root; chmod go-w)"
            );
            failed++;
        } else if (r == -ETIMEDOUT) {
            log_msg(
                LOG_LVL_ERROR,
                "chained hook %s did not finish on %s within %d s and was stopped "
                "(hook_timeout_s in the settings)",
                path, phase, timeout_s
            );
            failed++;
        } else if (r < 0) {
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

/* profile_override.toml back as it was (after a later step of the start failed). */
static void restore_unlock(const struct hook_env *env, const struct vm_plan *p) {
    int r = p->unlock_old ? hostfs_replace_file(
                                env->fs, p->unlock_path, p->unlock_old, strlen(p->unlock_old), 0644
                            )
                          : hostfs_unlink(env->fs, p->unlock_path);
    if (r < 0) {
        log_msg(LOG_LVL_WARN, "could not put %s back as it was: %s", p->unlock_path, strerror(-r));
    }
}

/* The VM's tuning, once its vGPUs exist and before QEMU opens them: vgpu_unlock's table
 * first (the file can be put back), then each vGPU's vgpu_params (a device we created is
 * removed again by the caller if this fails). */
static int apply_tuning(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    int r;
    if (p->unlock_change) {
        r = hostfs_replace_file(
            env->fs, p->unlock_path, p->unlock_new, strlen(p->unlock_new), 0644
        );
        if (r < 0) {
            err_set(e, r, "cannot write %s: %s", p->unlock_path, strerror(-r));
            err_hint(e, "make /etc/vgpu_unlock writable for root (disk space?), then start again");
            return r;
        }
        log_msg(
            LOG_LVL_INFO, "%s [vm.%lu] in %s",
            p->tuning && p->tuning->nunlock ? "wrote" : "removed", p->vmid, p->unlock_path
        );
    }
    for (size_t i = 0; i < p->n; i++) {
        const struct planned_mdev *it = &p->items[i];
        char path[PATH_MAX], cur[64] = "";
        if (it->action == ACT_PROXMOX) {
            continue; /* Proxmox makes it later (warned by the plan) */
        }
        snprintf(path, sizeof(path), SYS_MDEV_DEVICES "/%s/nvidia/vgpu_params", it->uuid);
        if (!p->params) {
            /* a device kept from an earlier start may hold params since cleared: " " clears */
            if (it->action != ACT_REUSE || hostfs_read(env->fs, path, cur, sizeof(cur) - 1) <= 0 ||
                cur[strspn(cur, " \n")] == '\0') {
                continue;
            }
        }
        r = hostfs_write_str(env->fs, path, p->params ? p->params : " ");
        if (r < 0) {
            err_set(
                e, r, "the driver refused vgpu_params '%s' for mdev %s (index %u): %s",
                p->params ? p->params : " ", it->uuid, it->index, strerror(-r)
            );
            if (r == -EBUSY) {
                err_hint(
                    e,
                    "the device is open already (a QEMU still holds it? 'pve-vgpu-hook status'); "
                    "stop that, or drop the params ('pve-vgpu-hook tune %lu --clear'); nothing "
                    "was left applied",
                    p->vmid
                );
            } else if (r == -ENOENT) {
                err_hint(
                    e,
                    "this vGPU has no nvidia/vgpu_params (not NVIDIA's driver, or one without "
                    "plugin parameters): drop the params ('pve-vgpu-hook tune %lu --clear'); "
                    "nothing was left applied",
                    p->vmid
                );
            } else {
                err_hint(
                    e, "check the parameter names ('pve-vgpu-hook help tune') and the kernel log; "
                       "nothing was left applied"
                );
            }
            if (p->unlock_change) {
                restore_unlock(env, p);
            }
            return r;
        }
        log_msg(
            LOG_LVL_INFO, "vgpu_params %s on mdev %s", p->params ? p->params : "cleared", it->uuid
        );
    }
    return 0;
}

/* Managed mode on NVIDIA's vendor interface: this node's VFs into the VM's resource mapping
 * before Proxmox reads it (it does so after pre-start, while it builds the QEMU command). */
static int write_vfmap(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    if (!p->vfmap_id || !p->vfmap_changed) {
        return 0;
    }
    struct pvh_warnings w = {0};
    int r = managed_vfmap_write(
        env, p->vmid, p->node, p->vfmap_id, p->vfmap_lines, p->cfg.lock_timeout_s * 1000, &w, e
    );
    log_warnings(&w);
    warn_free(&w);
    if (r == 0) {
        log_msg(
            LOG_LVL_INFO, "resource mapping %s now lists node %s's VFs in placement order",
            p->vfmap_id, p->node
        );
    }
    return r;
}

/* A start that goes ahead: the VM's devices, its tuning, then its resource mapping (the
 * cluster file last, so that a refusal before it leaves it as it was; devices created by this
 * run are removed again and vgpu_unlock's file put back when a later step is refused). */
static int run_plan(const struct hook_env *env, struct vm_plan *p, struct pvh_err *e) {
    int r = execute_plan(env, p, e);
    if (r == 0 && (r = apply_tuning(env, p, e)) < 0) {
        undo_created(env, p, p->n);
    } else if (r == 0 && (r = write_vfmap(env, p, e)) < 0) {
        if (p->unlock_change) {
            restore_unlock(env, p);
        }
        undo_created(env, p, p->n);
    }
    return r;
}

/* The cluster's view of this node after a create or remove: best effort, never a failure. */
static void hook_publish(const struct hook_env *env) {
    struct pvh_err e = {0};
    if (cluster_publish(env, NULL, &e) < 0) {
        log_msg(LOG_LVL_WARN, "%s (the start is not affected)", e.msg);
    }
}

static int phase_pre_start(const struct hook_env *env, unsigned long vmid) {
    struct pvh_err e = {0};
    int lock = mdev_host_lock(env->fs, &e);
    if (lock < 0) {
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
        if ((r = run_plan(env, &p, &e)) < 0) {
            log_err(&e);
        }
    } else if (plan_refuses_once(&p)) {
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
        r = run_plan(env, &p, &e);
        if (r < 0) {
            log_err(&e);
        }
    }
    hostfs_unlock(lock);
    /* Chained hooks run after our own work succeeded (another pre-start failure stops the
     * start anyway). One that fails stops the start: undo what this run created first. */
    if (r == 0 && run_chained(env, vmid, "pre-start", p.cfg.hook_timeout_s, true)) {
        int relock = mdev_host_lock(env->fs, &e);
        undo_created(env, &p, p.n);
        hostfs_unlock(relock);
        log_msg(LOG_LVL_INFO, "what to do: fix the chained hook or move it out of %s", HOOKS_DIR);
        r = -ECANCELED;
    }
    plan_free(&p); /* post-start publishes what this start created (hook_post_start) */
    return errno_exit(r);
}

/* NVIDIA's driver removes its mdevs itself shortly after QEMU exits; removing one first has
 * broken drivers (qemu-server 49c51a60). Poll up to wait_s rather than sleep blindly; only
 * devices on NVIDIA GPUs are worth waiting for. The ones gone get an empty uuid. */
static int
wait_for_driver(const struct hook_env *env, struct inv_mdev *mine, size_t n, int wait_s) {
    long deadline = mono_ms() + wait_s * 1000L;
    char path[PATH_MAX];
    _cleanup_free_ bool *nvidia = calloc(n ? n : 1, sizeof(*nvidia));
    if (!nvidia) {
        return -ENOMEM;
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
            if (str_fmt(path, sizeof(path), SYS_MDEV_DEVICES "/%s", mine[i].uuid) == 0 &&
                hostfs_lexists(env->fs, path) < 0) {
                log_msg(LOG_LVL_INFO, "mdev %s was removed by its driver", mine[i].uuid);
                mine[i].uuid[0] = '\0';
                continue;
            }
            left += nvidia[i];
        }
        if (!left || mono_ms() >= deadline) {
            return 0;
        }
        sleep_ms(100);
    }
}

/* The VF types of NVIDIA's vendor interface that this VM's config names (hostpci PCI ids or a
 * mapping's paths on this node) and that no QEMU uses any more: Proxmox resets them at stop,
 * but skips that on some paths (9.0.x without D-Bus). Another VM naming the VF that is being
 * started keeps it. Returns 1 when a reset failed. */
static int reset_vf_types(const struct hook_env *env, unsigned long vmid) {
    _cleanup_free_ struct vf_holder *vfs = NULL;
    size_t n = 0;
    if (inventory_vf_holders(env->fs, &vfs, &n) < 0 || n == 0) {
        return 0;
    }
    _cleanup_(pveconf_freep) struct pveconf conf = {0};
    if (vmconf_load(env->fs, NULL, vmid, &conf) < 0) {
        return 0; /* the VM is gone: cleanup handles what it left */
    }
    struct hostpci hps[HOSTPCI_MAX];
    size_t nh;
    (void)hostpci_mdev_entries(&conf, hps, &nh, NULL, NULL);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        const struct vf_holder *v = &vfs[i];
        bool ours = false;
        for (size_t k = 0; k < nh && !ours; k++) {
            ours = (hps[k].nhost == 1 && !strcmp(hps[k].host[0], v->bdf)) ||
                   (hps[k].mapping[0] && v->vmid == vmid);
        }
        if (!leftover_removable(leftover_verdict(ours, v->state, v->vmid, vmid))) {
            continue;
        }
        int r = inventory_vf_reset(env->fs, v->bdf);
        if (r < 0) {
            log_msg(
                LOG_LVL_ERROR,
                "cannot reset the type of VF %s (nvidia-%u): %s; run "
                "'pve-vgpu-hook cleanup' later",
                v->bdf, v->type, strerror(-r)
            );
            failed = 1;
        } else {
            log_msg(
                LOG_LVL_INFO, "reset the type of VF %s (nvidia-%u), which Proxmox left set", v->bdf,
                v->type
            );
        }
    }
    return failed;
}

static int phase_post_stop(const struct hook_env *env, unsigned long vmid, int wait_s) {
    struct pvh_warnings w = {0};
    if (vm_is_running(env->fs, vmid)) {
        log_msg(LOG_LVL_INFO, "VM is running again; leaving its vGPUs in place");
        return 0;
    }
    struct inv_mdev *mine = NULL;
    size_t n = 0;
    int r = mdev_list(env->fs, vmid, &mine, &n, &w);
    log_warnings(&w);
    warn_free(&w);
    if (r < 0) {
        log_msg(LOG_LVL_ERROR, "cannot list %s: %s", SYS_MDEV_DEVICES, strerror(-r));
        return 1;
    }
    if (wait_for_driver(env, mine, n, wait_s) < 0) {
        free(mine);
        log_msg(LOG_LVL_ERROR, "out of memory");
        return 1;
    }
    struct pvh_err e = {0};
    int lock = mdev_host_lock(env->fs, &e);
    if (lock < 0) {
        log_err(&e);
        log_msg(LOG_LVL_INFO, "what to do: run 'pve-vgpu-hook cleanup' later");
        free(mine);
        return 1;
    }
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mine[i].uuid[0]) {
            continue;
        }
        /* Proxmox may have started the VM again meanwhile (a reboot): keep its devices. */
        mine[i].state = vm_is_running(env->fs, vmid) ? VM_RUNNING : VM_BUSY; /* its own stop */
        if (!leftover_removable(leftover_of_mdev(&mine[i], vmid))) {
            log_msg(LOG_LVL_INFO, "VM is running again; leaving its vGPUs in place");
            break;
        }
        r = mdev_remove(env->fs, mine[i].uuid);
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
    if (!vm_is_running(env->fs, vmid)) {
        failed |= reset_vf_types(env, vmid);
    }
    hostfs_unlock(lock);
    hook_publish(env); /* an mdev removed, or a VF's type reset: written only when changed */
    free(mine);
    return failed;
}

/* The cluster learns of a start's vGPUs once the VM runs: publishing reads the whole host,
 * which the start need not wait for. Only a VM with a device of ours changed the inventory. */
static void phase_post_start(const struct hook_env *env, unsigned long vmid) {
    struct pvh_warnings w = {0};
    struct inv_mdev *mine = NULL;
    size_t n = 0;
    if (mdev_list(env->fs, vmid, &mine, &n, &w) == 0 && n) {
        hook_publish(env);
    }
    free(mine);
    warn_free(&w);
}

int hook_run(const struct hook_env *env, unsigned long vmid, const char *phase) {
    if (env->chained_from && env->chained_from[0]) {
        /* Doing the work again would also run hooks.d again, each level in its own process
         * group, so no time limit would end it. The calling pve-vgpu-hook has done the work. */
        _cleanup_free_ char *from =
            str_escape_ctl(env->chained_from, strlen(env->chained_from), false);
        log_msg(
            LOG_LVL_ERROR,
            "pve-vgpu-hook was run by chained hook %s (" HOOK_DEPTH_ENV " is set): skipped, "
            "since it would run " HOOKS_DIR " again, without end; what to do: remove the "
            "pve-vgpu-hook call from that hook (the VM's hookscript runs pve-vgpu-hook already)",
            from ? from : "?"
        );
        return 0;
    }
    if (!strcmp(phase, "pre-start")) {
        return phase_pre_start(env, vmid);
    }
    struct config_error ce;
    struct pvh_warnings w = {0};
    struct pvh_config cfg;
    if (config_load(env, CONFIG_USE_TEARDOWN, &cfg, &w, &ce) < 0) {
        /* Cleaning up matters more than settings: go on with defaults, in one line. */
        log_msg(LOG_LVL_WARN, "%s; %s", ce.err.msg, ce.err.hint);
    }
    log_warnings(&w);
    warn_free(&w);
    int status = 0;
    if (!strcmp(phase, "post-stop")) {
        status = phase_post_stop(env, vmid, cfg.remove_wait_s);
    } else if (!strcmp(phase, "post-start")) {
        phase_post_start(env, vmid);
    } else if (strcmp(phase, "pre-stop")) {
        log_msg(
            LOG_LVL_WARN,
            "unknown phase '%s' ignored (known: pre-start, post-start, "
            "pre-stop, post-stop)",
            phase
        );
    }
    /* In the other phases a failing chained hook is reported and the rest still run. */
    int failed = run_chained(env, vmid, phase, cfg.hook_timeout_s, false);
    config_free(&cfg);
    return failed ? 1 : status;
}
