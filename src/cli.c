#include "cli.h"

#include "hook.h"
#include "hostfs.h"
#include "inventory.h"
#include "log.h"
#include "mdev_uuid.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE 2

struct cli_ctx {
    struct hostfs fs;
    const char *root;
    const char *config_path;
};

struct command {
    const char *name;
    int (*run)(struct cli_ctx *ctx, int argc, char **argv);
    const char *usage;
    const char *help;
};

static int cmd_check(struct cli_ctx *ctx, int argc, char **argv);

static const struct command commands[] = {
    {"check", cmd_check, "check VMID",
     "Dry run of pre-start: shows which mdev would be created where, or why the start would be\n"
     "refused, and whether pre-start would have to add -uuid to the VM's args. Changes nothing.\n"
     "Exit status 0 when the VM would start, 1 when not.\n"
     "\n"
     "Example:\n"
     "  pve-vgpu-hook check 100\n"},
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
    "  post-start, pre-stop: nothing to do.\n"
    "\n"
    "Install: qm set VMID --hookscript local:snippets/pve-vgpu-hook\n";

static void usage(FILE *out)
{
    fprintf(out, "Usage: pve-vgpu-hook [GLOBAL] COMMAND [ARGS]\n"
                 "       pve-vgpu-hook VMID PHASE\n\n");
    fputs(hook_help, out);
    fprintf(out, "\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  %-30s %.*s\n", commands[i].usage,
                (int)strcspn(commands[i].help, ".\n"), commands[i].help);
    }
    fprintf(out, "  %-30s %s\n", "help COMMAND", "Explain one command, with an example");
    fprintf(out,
            "\nGlobal options:\n"
            "  --root DIR       resolve every host path (/sys, /etc/pve, /run, /var/lib/dpkg)\n"
            "                   under DIR; also env PVE_VGPU_HOOK_ROOT. For tests and dry runs.\n"
            "  --config FILE    our settings (JSON), a host path; default %s;\n"
            "                   also env PVE_VGPU_HOOK_CONFIG\n"
            "  --version, --help\n"
            "\nExit status: 0 done, 1 refused or failed (stderr says why), 2 usage error.\n",
            CONFIG_DEFAULT_PATH);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", PVH_PROG);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'pve-vgpu-hook --help'.\n");
    return EXIT_USAGE;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (!strcmp(commands[i].name, name)) {
            return &commands[i];
        }
    }
    return NULL;
}

static int cmd_help(const char *name)
{
    const struct command *c = find_command(name);
    if (!c) {
        if (!strcmp(name, "hook")) {
            fputs(hook_help, stdout);
            return 0;
        }
        return usage_error("no command '%s' (see --help)", name);
    }
    printf("Usage: pve-vgpu-hook [GLOBAL] %s\n\n%s", c->usage, c->help);
    return 0;
}

static bool looks_numeric(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s);
}

static int parse_vmid_arg(const char *s, unsigned long *vmid)
{
    if (!vmid_parse(s, vmid)) {
        fprintf(stderr,
                "%s: '%s' is not a VMID: a VMID is a whole number from %lu to %lu\n"
                "Try 'pve-vgpu-hook --help'.\n",
                PVH_PROG, s, VMID_MIN, VMID_MAX);
        return EXIT_USAGE;
    }
    return 0;
}

static int open_root(struct cli_ctx *ctx)
{
    int r = hostfs_open(&ctx->fs, ctx->root);
    if (r < 0) {
        fprintf(stderr, "%s: error: cannot open root directory '%s': %s\n", PVH_PROG,
                ctx->root ? ctx->root : "/", strerror(-r));
        return 1;
    }
    return 0;
}

static struct hook_env env_of(struct cli_ctx *ctx)
{
    return (struct hook_env){.fs = &ctx->fs,
                             .config_path = ctx->config_path,
                             .migrated_from = getenv("PVE_MIGRATED_FROM")};
}

static int run_hook(struct cli_ctx *ctx, int argc, char **argv)
{
    unsigned long vmid;
    if (argc < 2) {
        return usage_error("%s: missing PHASE (pre-start, post-start, pre-stop, post-stop)",
                           argv[0]);
    }
    if (argc > 2) {
        return usage_error("unexpected argument '%s': hookscripts get exactly VMID PHASE",
                           argv[2]);
    }
    int r = parse_vmid_arg(argv[0], &vmid);
    if (r) {
        return r;
    }
    char ctxname[32];
    snprintf(ctxname, sizeof(ctxname), "VM %lu", vmid);
    log_set_context(ctxname);
    log_use_syslog(true);
    if ((r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    r = hook_run(&env, vmid, argv[1]);
    hostfs_close(&ctx->fs);
    log_use_syslog(false);
    return r;
}

static const char *action_name(enum mdev_action a)
{
    return a == ACT_REUSE ? "reuse" : a == ACT_REPLACE ? "replace" : "create";
}

static int cmd_check(struct cli_ctx *ctx, int argc, char **argv)
{
    unsigned long vmid;
    if (argc != 1) {
        return usage_error("%s", "usage: pve-vgpu-hook check VMID");
    }
    int r = parse_vmid_arg(argv[0], &vmid);
    if (r || (r = open_root(ctx))) {
        return r;
    }
    struct hook_env env = env_of(ctx);
    struct pvh_err e = {0};
    struct vm_plan p;
    r = hook_plan(&env, vmid, &p, &e);
    for (size_t i = 0; i < p.host.warnings.n; i++) {
        fprintf(stderr, "%s: warning: %s\n", PVH_PROG, p.host.warnings.items[i]);
    }
    for (size_t i = 0; i < p.warnings.n; i++) {
        fprintf(stderr, "%s: warning: %s\n", PVH_PROG, p.warnings.items[i]);
    }
    int status = 0;
    if (r > 0) {
        printf("VM %lu: not a VM (container); the hook does nothing\n", vmid);
    } else if (r < 0) {
        printf("VM %lu: would NOT start\n", vmid);
        char *line = e.msg;
        while (line && *line) {
            char *nl = strchr(line, '\n');
            printf("  %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
            line = nl ? nl + 1 : NULL;
        }
        if (e.hint[0]) {
            printf("  what to do: %s\n", e.hint);
        }
        status = 1;
    } else if (p.n == 0) {
        printf("VM %lu: no vGPU in the VM config; the hook does nothing\n", vmid);
    } else {
        bool refuse_once = p.args_change && !p.migrating;
        printf("VM %lu: %s\n", vmid,
               refuse_once ? "would NOT start this time (args must gain -uuid first)"
                           : "would start");
        for (size_t m = 0; m < p.host.nmdevs; m++) {
            if (p.reclaim[m]) {
                const struct inv_mdev *md = &p.host.mdevs[m];
                printf("  remove leftover %s (VM %lu, %s on %s)\n", md->uuid, md->vmid,
                       md->type_id, md->parent_bdf);
            }
        }
        for (size_t i = 0; i < p.n; i++) {
            const struct planned_mdev *it = &p.items[i];
            const struct inv_type *t = inv_parent_type(&p.host, it->parent, it->type_id);
            const struct inv_typedef *d = t ? inv_def(&p.host, t) : NULL;
            printf("  index %u: %s %s (%s%s%s) on %s\n", it->index, action_name(it->action),
                   it->uuid, it->type_id, d && d->name[0] ? ", " : "", d ? d->name : "",
                   p.host.parents[it->parent].bdf);
        }
        if (p.args_change) {
            printf("  args: pre-start would set 'args: %s' (%s)%s\n", p.new_args, p.uuid_reason,
                   p.migrating ? "; not during a migration" : "");
        } else if (p.want_uuid[0]) {
            printf("  args: already has -uuid %s\n", p.want_uuid);
        } else if (p.uuid_reason[0]) {
            printf("  args: no change needed (%s)\n", p.uuid_reason);
        }
        status = refuse_once ? 1 : 0;
    }
    hook_plan_free(&p);
    hostfs_close(&ctx->fs);
    return status;
}

static int take_value(int *i, int argc, char **argv, const char *opt, const char **out)
{
    size_t ol = strlen(opt);
    if (!strncmp(argv[*i], opt, ol) && argv[*i][ol] == '=') {
        *out = argv[*i] + ol + 1;
        return 1;
    }
    if (strcmp(argv[*i], opt)) {
        return 0;
    }
    if (*i + 1 >= argc) {
        return -1;
    }
    *out = argv[++*i];
    return 1;
}

int cli_main(int argc, char **argv)
{
    struct cli_ctx ctx = {.fs = {.rootfd = -1}};
    ctx.root = getenv("PVE_VGPU_HOOK_ROOT");
    ctx.config_path = getenv("PVE_VGPU_HOOK_CONFIG");
    if (ctx.config_path && !*ctx.config_path) {
        ctx.config_path = NULL;
    }
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
        int t;
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
            printf("pve-vgpu-hook %s\n", PVH_VERSION);
            return 0;
        }
        if ((t = take_value(&i, argc, argv, "--root", &ctx.root)) ||
            (t = take_value(&i, argc, argv, "--config", &ctx.config_path))) {
            if (t < 0) {
                return usage_error("option %s needs a value", argv[i]);
            }
            continue;
        }
        return usage_error("unknown option '%s'", argv[i]);
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (looks_numeric(argv[i]) || (argv[i][0] == '-' && looks_numeric(argv[i] + 1))) {
        return run_hook(&ctx, argc - i, argv + i);
    }
    if (!strcmp(argv[i], "help")) {
        if (i + 1 >= argc) {
            usage(stdout);
            return 0;
        }
        return cmd_help(argv[i + 1]);
    }
    const struct command *c = find_command(argv[i]);
    if (!c) {
        return usage_error("unknown command '%s'", argv[i]);
    }
    for (int k = i + 1; k < argc; k++) {
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
            return cmd_help(c->name);
        }
    }
    return c->run(&ctx, argc - i - 1, argv + i + 1);
}
