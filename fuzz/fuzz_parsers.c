/*
 * libFuzzer target for every parser of untrusted text: VM configs, property strings, hostpci,
 * args, our JSON settings, NVIDIA names and descriptions, dpkg status, pci.cfg, storage.cfg,
 * creatable_vgpu_types, Proxmox task lists and logs, journal lines of a vGPU start, UUIDs, the
 * control-byte escaper. Beyond "no crash" it checks
 * properties: a config rewritten unchanged is byte-identical, args_with_uuid really yields that
 * -uuid (a second edit changes nothing) and removing it again gives the args back, and escaped
 * text has no control bytes left.
 * Build and run: fuzz/run.sh [SECONDS]
 */
#include "config.h"
#include "debver.h"
#include "inventory.h"
#include "mdev_uuid.h"
#include "nvidia_iface.h"
#include "pveconf.h"
#include "pvetask.h"
#include "qemu_args.h"
#include "sectioncfg.h"
#include "strutil.h"
#include "toml.h"
#include "tune.h"
#include "vfmap.h"
#include "vgpu_type.h"
#include "vgpulog.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The paths Proxmox reads for node from mapping id in text (mapping_paths), joined by spaces;
 * NULL when it cannot read them. */
static char *node_paths(const char *text, const char *id, const char *node) {
    struct sectioncfg cfg;
    struct pvh_err e;
    char(*paths)[16] = NULL, *out = NULL;
    size_t n = 0, size = 0;
    if (sectioncfg_parse(text, false, &cfg) < 0) {
        return NULL;
    }
    if (mapping_paths(&cfg, id, node, &paths, &n, &e) == 0) {
        FILE *f = open_memstream(&out, &size);
        for (size_t i = 0; f && i < n; i++) {
            fprintf(f, "%s%s", i ? " " : "", paths[i]);
        }
        if (f) {
            fclose(f);
        }
    }
    free(paths);
    sectioncfg_free(&cfg);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) {
        return 0;
    }
    unsigned which = data[0] % 11;
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    size_t len = size - 1;
    struct pvh_err e;
    switch (which) {
    case 0: { /* a VM config: round trip and an args edit */
        struct pveconf c;
        if (pveconf_parse(text, len, &c) == 0) {
            size_t outlen;
            char *out = pveconf_serialize(&c, &outlen);
            if (outlen != len || memcmp(out, text, len)) {
                abort(); /* must round-trip byte for byte */
            }
            free(out);
            const char *args = pveconf_get(&c, "args");
            char *na;
            bool changed;
            const char *U = "00000000-0000-0000-0000-000000000100";
            /* -EINVAL (an open quote) is a refusal, not a result to check */
            if (args_with_uuid(args, U, &na, &changed) == 0) {
                char *again;
                bool changed2;
                if (args_with_uuid(na, U, &again, &changed2) != 0 || changed2) {
                    abort(); /* the last -uuid must be ours */
                }
                free(again);
                if (!strchr(na, '\n') && !strchr(na, '\r') && *na) {
                    (void)pveconf_set(&c, "args", na);
                }
                free(na);
            }
            args = pveconf_get(&c, "args"); /* the edit above replaced the value */
            char *with_dev;
            if (args && args_append_pair(args, "-device", "x,y=z", &with_dev) == 0) {
                char *back;
                bool found;
                if (!args_has_pair(with_dev, "-device", "x,y=z") ||
                    args_remove_pair(with_dev, "-device", "x,y=z", &back, &found) != 0 || !found) {
                    abort(); /* an appended pair is found and removed again */
                }
                free(back);
                free(with_dev);
            }
            struct pvh_warnings w = {0};
            pveconf_warn_ignored(&c, "fuzz.conf", &w);
            warn_free(&w);
            char su[64];
            (void)pveconf_smbios_uuid(&c, su, sizeof(su));
            if (pveconf_apply_pending(&c) < 0) {
                abort(); /* only memory could fail */
            }
            for (unsigned i = 0; i < 16; i++) {
                char key[16];
                struct hostpci hp;
                snprintf(key, sizeof(key), "hostpci%u", i);
                const char *v = pveconf_get(&c, key);
                if (v) {
                    (void)hostpci_parse(i, v, &hp, &e);
                }
            }
            pveconf_free(&c);
        }
        break;
    }
    case 1: { /* our JSON settings */
        struct pvh_config cfg;
        struct pvh_warnings w = {0};
        struct config_error ce;
        (void)config_parse(text, len, "fuzz.json", &cfg, NULL, &w, &ce);
        config_free(&cfg);
        warn_free(&w);
        break;
    }
    case 2: { /* property strings, hostpci values, args tokens */
        struct propstr ps;
        struct hostpci hp;
        if (propstr_parse(text, "host", &ps, &e) == 0) {
            propstr_free(&ps);
        }
        (void)hostpci_parse(3, text, &hp, &e);
        (void)hostpci_check_syntax(text, NULL, 0);
        (void)vgpu_type_query_valid(text);
        char *out;
        bool found;
        if (args_remove_pair(text, "-uuid", "x", &out, &found) == 0) {
            free(out);
        }
        char id[32];
        (void)pci_id_normalize(text, id, sizeof(id));
        break;
    }
    case 3: { /* NVIDIA names and descriptions */
        struct vgpu_type_info t;
        vgpu_type_describe(text, text, &t);
        (void)vgpu_type_matches(text, "nvidia-46", text);
        break;
    }
    case 4: { /* dpkg */
        char v[64];
        (void)debver_installed(text, "qemu-server", v, sizeof(v));
        char *mid = memchr(text, '|', len);
        if (mid) {
            *mid = '\0';
            int a = debver_cmp(text, mid + 1), b = debver_cmp(mid + 1, text);
            if ((a > 0) != (b < 0) || (a == 0) != (b == 0)) {
                abort(); /* the order must be antisymmetric */
            }
        }
        break;
    }
    case 5: { /* /etc/pve/mapping/pci.cfg and storage.cfg */
        char(*paths)[16];
        size_t n;
        struct storage_info st;
        struct sectioncfg cfg;
        for (int typed = 0; typed < 2; typed++) {
            if (sectioncfg_parse(text, typed, &cfg) == 0) {
                if (mapping_paths(&cfg, "vgpu", "pve1", &paths, &n, &e) == 0) {
                    free(paths);
                }
                (void)storage_find(&cfg, "local", &st);
                sectioncfg_free(&cfg);
            }
        }
        /* managed mode's own mapping: appended to any file, Proxmox reads exactly our VF from
         * it, and removing it gives the file back byte for byte */
        size_t s0, e0;
        char *put = NULL, *back = NULL, *got = NULL, *before = NULL;
        unsigned sep;
        if (sectioncfg_span(text, false, "vgpu-hook-1", &s0, &e0) < 0 &&
            vfmap_put(
                text, "vgpu-hook-1", 1, "pve1", "\tmap node=pve1,path=0000:81:00.4,id=1:2\n", &put,
                &sep
            ) == 0) {
            if (!(got = node_paths(put, "vgpu-hook-1", "pve1")) ||
                strcmp(got, "0000:81:00.4") != 0 ||
                vfmap_remove(put, "vgpu-hook-1", sep, &back) != 0 || strcmp(back, text) != 0) {
                abort();
            }
        }
        free(put);
        free(back);
        free(got);
        put = got = NULL;
        /* a node's lines replaced in an existing section Proxmox can read: exactly the new
         * ones are read, and nothing before the section changed */
        if (sectioncfg_span(text, false, "vgpu-hook-2", &s0, &e0) == 0) {
            before = node_paths(text, "vgpu-hook-2", "pve1");
            if (vfmap_put(
                    text, "vgpu-hook-2", 2, "pve1", "\tmap node=pve1,path=0000:81:00.5,id=1:2\n",
                    &put, &sep
                ) != 0 ||
                strncmp(put, text, s0) != 0 ||
                (before && (!(got = node_paths(put, "vgpu-hook-2", "pve1")) ||
                            strcmp(got, "0000:81:00.5") != 0))) {
                abort();
            }
        }
        free(before);
        free(put);
        free(got);
        break;
    }
    case 6: { /* nvidia/creatable_vgpu_types, and what reaches a terminal */
        struct nvidia_iface nv = {0};
        (void)nvidia_parse_creatable(text, &nv);
        nvidia_iface_free(&nv);
        char *esc = str_escape_ctl(text, len, false);
        if (!esc || str_has_ctl(esc, false)) {
            abort(); /* escaped text is safe to print */
        }
        free(esc);
        break;
    }
    case 7: { /* vgpu_unlock's profile_override.toml, and our table spliced into it */
        struct toml_doc d;
        struct pvh_warnings w = {0};
        if (toml_parse(text, len, &d, &e) == 0) {
            static const struct tune_kv kv[] = {
                {"frl_enabled", "0", false}, {"framebuffer", "896MiB", true}};
            const struct vm_tuning t = {.unlock = (struct tune_kv *)kv, .nunlock = 2};
            const char *vm[] = {"vm", "100"};
            bool had = toml_find(&d, vm, 2) != NULL;
            char *table = tune_unlock_table(&t, 100), *out = NULL, *back = NULL;
            if (unlock_file_check(&d, text, 0, 0, &w, &e) == 0 &&
                unlock_file_put(text, &d, 100, table, &out, &e) == 0) {
                struct toml_doc d2;
                const struct toml_table *ours;
                if (toml_parse(out, strlen(out), &d2, &e) != 0 || !(ours = toml_find(&d2, vm, 2)) ||
                    ours->nkvs != 2 || unlock_file_check(&d2, out, 0, 0, &w, &e) != 0) {
                    abort(); /* what we write must stay valid, with our table in it */
                }
                if (unlock_file_put(out, &d2, 100, NULL, &back, &e) != 0 ||
                    (!had && len && text[len - 1] == '\n' && (len < 2 || text[len - 2] != '\n') &&
                     strcmp(back, text) != 0)) {
                    abort(); /* and removing it gives their file back */
                }
                toml_free(&d2);
            }
            free(table);
            free(out);
            free(back);
            toml_free(&d);
        }
        warn_free(&w);
        break;
    }
    case 9: { /* Proxmox task lists and logs: each line as an index and an active line */
        const char *pos = text, *line;
        size_t llen;
        while (str_next_line(&pos, &line, &llen)) {
            struct pve_upid u;
            if (upid_parse(line, llen, &u) == 0) {
                char path[4096];
                if (!u.subdir || !strchr("0123456789ABCDEF", u.subdir)) {
                    abort(); /* the log's directory is a hex digit */
                }
                (void)pve_task_log_path("x", &u, path, sizeof(path));
            }
            for (int active = 0; active < 2; active++) {
                struct pve_task t;
                if (pve_task_parse(line, llen, active, &t) == 0) {
                    if (!t.upid || (t.ended && !t.status) || strchr(t.upid, '/')) {
                        abort(); /* a UPID names a file: never a path */
                    }
                    pve_task_free(&t);
                }
            }
        }
        free(pve_task_log_status(text));
        break;
    }
    case 10: { /* journal messages: which vGPU, VM or PCI device a line names */
        char uuid[VGPULOG_UUID_SIZE];
        unsigned long vmid;
        if ((vgpulog_kernel_uuid(text, uuid) || vgpulog_start_call_uuid(text, uuid) ||
             vgpulog_any_uuid(text, uuid)) &&
            (strlen(uuid) != MDEV_UUID_LEN || !uuid_is_canonical(uuid))) {
            abort(); /* only a whole canonical UUID */
        }
        (void)vgpulog_unlock_vmid(text, &vmid);
        (void)vgpulog_names_pci(text, "0000:41:00.4");
        break;
    }
    default: { /* UUIDs and VMIDs */
        unsigned idx;
        unsigned long vmid;
        if (mdev_uuid_parse(text, &idx, &vmid)) {
            char back[MDEV_UUID_LEN + 1];
            mdev_uuid_for(vmid, idx, back);
            if (strcmp(back, text)) {
                abort(); /* parse and format must agree */
            }
        }
        (void)vmid_parse(text, &vmid);
        (void)uuid_is_canonical(text);
        break;
    }
    }
    free(text);
    return 0;
}
