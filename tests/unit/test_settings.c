/*
 * A settings file that cannot be used (DESIGN.md "Settings that cannot be read"), on the real
 * binary: every command names file and line:column; types, status, check and doctor still show
 * the host and exit 1; the commands that act refuse and change nothing; post-stop still
 * removes the VM's vGPUs. And `config check [FILE]`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <json-c/json.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST;
static struct fh_result R;

#define run(...) fh_run(FH, &R, NULL, __VA_ARGS__, NULL)

#define LIVE "etc/pve/vgpu-hook.json"
/* a trailing comma: line 3, column 1 */
#define BAD_JSON "{\n  \"policy\": \"auto\",\n}\n"
#define BAD_JSON_AT "/etc/pve/vgpu-hook.json:3:1: invalid JSON"
/* a bad value: its key at line 2, column 3 */
#define BAD_VALUE "{\n  \"remove_wait_s\": -1\n}\n"
#define BAD_VALUE_AT "/etc/pve/vgpu-hook.json:2:3: \"remove_wait_s\" must be"

/* VM 100 (hostpci mode, stopped) with a leftover vGPU on GPU A; VM 101 without a vGPU. */
static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    fh_vmconf(FH, 100, "hostpci0: 0000:06:00.0,mdev=nvidia-46\n");
    fh_vmconf(FH, 101, "memory: 2048\n");
    assert_int_equal(fh_add_mdev(FH, GPU_A, "nvidia-46", U100), 0);
    fh_write(FH, LIVE, BAD_JSON);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

/* The settings_error object of a --json output, as every display command gives it. */
static void assert_settings_error(const char *out, int line, int column, const char *key) {
    json_object *o = json_tokener_parse(out);
    json_object *se, *v;
    if (!o || !json_object_object_get_ex(o, "settings_error", &se)) {
        fail_msg("no settings_error in\n%s", out);
    }
    assert_true(json_object_object_get_ex(se, "code", &v));
    assert_string_equal(json_object_get_string(v), "settings-invalid");
    assert_true(json_object_object_get_ex(se, "file", &v));
    assert_string_equal(json_object_get_string(v), "/etc/pve/vgpu-hook.json");
    assert_true(json_object_object_get_ex(se, "line", &v));
    assert_int_equal(json_object_get_int(v), line);
    assert_true(json_object_object_get_ex(se, "column", &v));
    assert_int_equal(json_object_get_int(v), column);
    assert_true(json_object_object_get_ex(se, "key", &v));
    if (key) {
        assert_string_equal(json_object_get_string(v), key);
    } else {
        assert_null(v);
    }
    assert_true(json_object_object_get_ex(se, "message", &v));
    char at[64];
    snprintf(at, sizeof(at), "/etc/pve/vgpu-hook.json:%d:%d: ", line, column);
    assert_contains(json_object_get_string(v), at);
    json_object_put(o);
}

static bool json_has(const char *out, const char *key) {
    json_object *o = json_tokener_parse(out);
    bool has = o && json_object_object_get_ex(o, key, NULL);
    json_object_put(o);
    return has;
}

static void test_display_commands_show_the_host(void **state) {
    (void)state;
    assert_int_equal(run("types"), 1);
    assert_contains(R.err, BAD_JSON_AT);
    assert_contains(R.err, "shown with the default settings");
    assert_contains(R.out, "0000:06:00.0  P40");
    assert_contains(R.out, "nvidia-46    GRID P40-1Q");

    assert_int_equal(run("status"), 1);
    assert_contains(R.err, BAD_JSON_AT);
    assert_contains(R.out, "0000:06:00.0");
    assert_contains(R.out, U100);

    /* check: the reason, and the plan as it would be with the defaults */
    assert_int_equal(run("check", "100"), 1);
    assert_contains(R.out, "VM 100: would NOT start");
    assert_contains(R.out, BAD_JSON_AT);
    assert_contains(R.out, "with the default settings pre-start would:");
    assert_contains(R.out, "index 0: reuse " U100);

    assert_int_equal(run("doctor"), 1);
    assert_contains(R.out, BAD_JSON_AT);

    /* a bad value: file, line:column and key */
    fh_write(FH, LIVE, BAD_VALUE);
    assert_int_equal(run("status"), 1);
    assert_contains(R.err, BAD_VALUE_AT);
    assert_contains(R.out, U100);
}

static void test_display_commands_json(void **state) {
    (void)state;
    assert_int_equal(run("status", "--json"), 1);
    assert_true(json_has(R.out, "gpus"));
    assert_settings_error(R.out, 3, 1, NULL);

    assert_int_equal(run("check", "100", "--json"), 1);
    assert_contains(R.out, "\"would_start\": false");
    assert_contains(R.out, "\"uuid\": \"" U100 "\"");
    assert_settings_error(R.out, 3, 1, NULL);

    assert_int_equal(run("doctor", "--json"), 1);
    assert_true(json_has(R.out, "problems"));
    assert_settings_error(R.out, 3, 1, NULL);

    fh_write(FH, LIVE, BAD_VALUE);
    assert_int_equal(run("status", "--json"), 1);
    assert_settings_error(R.out, 2, 3, "remove_wait_s");
    assert_int_equal(run("types", "--json"), 1);
    assert_settings_error(R.out, 2, 3, "remove_wait_s");
    assert_contains(R.out, "\"type\": \"nvidia-46\"");
    /* types --dumpjson is mdevctl's array: the error goes to stderr only */
    assert_int_equal(run("types", "--dumpjson"), 1);
    assert_contains(R.out, "\"nvidia-46\"");
    assert_not_contains(R.out, "settings_error");
    assert_contains(R.err, BAD_VALUE_AT);
}

/* Each acting command refuses, names the file and changes nothing. */
static void refuses(const char *bad_at, const char *const *args) {
    char *before = fh_snapshot(FH);
    assert_int_equal(fh_runv(FH, &R, NULL, args), 1);
    assert_contains(R.err, bad_at);
    assert_contains(R.err, "nothing was changed");
    assert_host_unchanged(FH, before);
}

static void test_acting_commands_refuse(void **state) {
    (void)state;
    static const char *const cmds[][6] = {
        {"100", "pre-start", NULL},     {"attach", "101", "--type", "P40-1Q", NULL},
        {"detach", "100", NULL},        {"tune", "100", "--param", "frame_rate_limiter=0", NULL},
        {"tune", "100", NULL},          {"cleanup", NULL},
        {"cleanup", "--dry-run", NULL},
    };
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        fh_write(FH, LIVE, BAD_JSON);
        refuses(BAD_JSON_AT, cmds[i]);
        fh_write(FH, LIVE, BAD_VALUE);
        refuses(BAD_VALUE_AT, cmds[i]);
    }
    assert_true(fh_exists(FH, BUS(U100))); /* the leftover is still there */
}

/* post-stop still removes the VM's vGPUs (after the default wait: fake devices never go by
 * themselves) and says why in one line. */
static void test_post_stop_removes_with_defaults(void **state) {
    (void)state;
    assert_int_equal(run("100", "post-stop"), 0);
    assert_false(fh_exists(FH, BUS(U100)));
    assert_contains(R.err, BAD_JSON_AT);
    assert_contains(R.err, "post-stop still removes the VM's vGPUs, after the default wait");
    const char *nl = strchr(R.err, '\n');
    assert_non_null(nl);
    assert_contains(nl + 1, "removed mdev " U100); /* the warning was one line */
    assert_not_contains(nl + 1, "vgpu-hook.json");
}

/* config check FILE: a file of this machine, outside --root */
static char *tmp_file(const char *content) {
    static char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s.candidate.json", FH->root); /* beside the root */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return path;
}

static void test_config_check(void **state) {
    (void)state;
    /* the live file */
    assert_int_equal(run("config", "check"), 1);
    assert_contains(R.err, BAD_JSON_AT);
    /* a candidate: valid, whatever the live file is */
    char *f = tmp_file("{\"policy\": \"none\", \"vms\": {\"100\": {\"type\": \"P40-1Q\"}}}\n");
    assert_int_equal(run("config", "check", f), 0);
    assert_contains(R.out, "is valid: 1 VM record, policy none");
    assert_int_equal(run("config", "check", f, "--json"), 0);
    assert_contains(R.out, "\"valid\": true");
    assert_contains(R.out, "\"vms\": 1");
    assert_contains(R.out, "\"error\": null");
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {BAD_JSON, ":3:1: invalid JSON: "},
        {"{\n  \"policy\": \"bogus\"\n}\n", ":2:3: \"policy\" must be one of"},
        {BAD_VALUE, ":2:3: \"remove_wait_s\" must be a whole number of seconds"},
        {"{\"vms\": {\"100\": {\"type\": \"P40-1Q\",\n  \"index\": 16}}}",
         ":2:3: \"vms.100.index\" must be"},
        {"{\"policy\": \"auto\",\n \"policy\": \"none\"}",
         ":2:2: the key \"policy\" appears twice"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = tmp_file(bad[i].text);
        assert_int_equal(run("config", "check", f), 1);
        assert_contains(R.err, f);
        assert_contains(R.err, bad[i].msg);
        assert_int_equal(run("config", "check", "--json", f), 1);
        assert_contains(R.out, "\"valid\": false");
        assert_contains(R.out, "\"code\": \"settings-invalid\"");
    }
    unlink(f);
    /* a named file must exist; the default one may be missing */
    assert_int_equal(run("config", "check", f), 1);
    assert_contains(R.err, "it does not exist");
    unlink(strcat(strcpy((char[PATH_MAX + 32]){0}, FH->root), "/" LIVE));
    assert_int_equal(run("config", "check"), 0);
    assert_contains(R.out, "/etc/pve/vgpu-hook.json does not exist: valid, every default applies");
    /* usage errors */
    assert_int_equal(run("config"), 2);
    assert_int_equal(run("config", "show"), 2);
    assert_int_equal(run("config", "check", "a", "b"), 2);
    assert_int_equal(run("config", "check", "--bogus"), 2);
}

static void test_help_mentions_config_check(void **state) {
    (void)state;
    assert_int_equal(run("--help"), 0);
    assert_contains(R.out, "config check [FILE]");
    assert_int_equal(run("help", "config"), 0);
    assert_contains(R.out, "config check [FILE]");
    assert_contains(R.out, "remove_wait_s"); /* still every key */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_display_commands_show_the_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_display_commands_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acting_commands_refuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_stop_removes_with_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_help_mentions_config_check, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
