/*
 * attach, detach and tune as one result, rendered twice: --dry-run says what would change and
 * leaves the host byte for byte as it was (no lock file, no temp copy); --json is one object,
 * the same for a change, a dry run and a refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fakehost.h"
#include "testutil.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fakehost FH_HOST;
static struct fakehost *const FH = &FH_HOST;
static struct fh_result R;

#define run(...) fh_run(FH, &R, NULL, __VA_ARGS__, NULL)
#define CONF "/etc/pve/qemu-server/100.conf"
#define SETTINGS "/etc/pve/vgpu-hook.json"
#define MDEV "00000000-0000-0000-0000-000000000100"

static int setup(void **state) {
    (void)state;
    assert_int_equal(fh_create_p40_pair(FH), 0);
    /* the args form (before 8.0.4): the mapping form's [PENDING] is test_mdevmap's */
    assert_int_equal(fh_qemu_server_version(FH, "8.0.3"), 0);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fh_destroy(FH);
    return 0;
}

/* R.out as JSON: one object. */
static json_object *out_json(void) {
    json_object *o = json_tokener_parse(R.out);
    if (!o || !json_object_is_type(o, json_type_object)) {
        fail_msg("not one JSON object:\n%s", R.out);
    }
    return o;
}

static const char *jget(json_object *o, const char *key) {
    json_object *v;
    assert_true(json_object_object_get_ex(o, key, &v));
    return json_object_get_string(v);
}

/* changes as "action file;" in order, for comparing. */
static void changes_of(json_object *o, char *buf, size_t size) {
    json_object *arr;
    buf[0] = '\0';
    assert_true(json_object_object_get_ex(o, "changes", &arr));
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, "%s %s;", jget(c, "action"), jget(c, "file"));
    }
}

static void test_attach_dry_run_and_json(void **state) {
    (void)state;
    fh_vmconf(FH, 100, "cores: 2\nmemory: 4096\n");
    char *before = fh_snapshot(FH);
    assert_int_equal(run("attach", "100", "--type", "P40-2Q", "--dry-run"), 0);
    assert_contains(
        R.out, "Dry run: nothing was written. It would:\n  modify " SETTINGS "\n  modify " CONF "\n"
    );
    assert_contains(R.out, "args: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/" MDEV);
    assert_contains(R.out, "hookscript: local:snippets/pve-vgpu-hook\n");
    assert_contains(R.out, "VM 100: would attach P40-2Q as mdev " MDEV);
    assert_int_equal(run("attach", "100", "--type", "P40-2Q", "--dry-run", "--json"), 0);
    json_object *o = out_json();
    char ch[512];
    changes_of(o, ch, sizeof(ch));
    assert_string_equal(ch, "modify " SETTINGS ";modify " CONF ";");
    assert_string_equal(jget(o, "dry_run"), "true");
    assert_string_equal(jget(o, "result"), "attached");
    assert_string_equal(jget(o, "vmid"), "100");
    assert_string_equal(jget(o, "pending"), "false");
    json_object_put(o);
    assert_host_unchanged(FH, before);

    /* the real attach changes what the dry run said */
    assert_int_equal(run("attach", "100", "--type", "P40-2Q", "--json"), 0);
    o = out_json();
    changes_of(o, ch, sizeof(ch));
    assert_string_equal(ch, "modify " SETTINGS ";modify " CONF ";");
    assert_string_equal(jget(o, "dry_run"), "false");
    assert_contains(jget(o, "message"), "VM 100: attached P40-2Q as mdev " MDEV);
    json_object_put(o);
    char *conf = fh_read_vmconf(FH, 100);
    assert_contains(conf, "hookscript: local:snippets/pve-vgpu-hook\n");
    free(conf);

    /* again: nothing left to change */
    assert_int_equal(run("attach", "100", "--type", "P40-2Q", "--json"), 0);
    o = out_json();
    changes_of(o, ch, sizeof(ch));
    assert_string_equal(ch, "");
    json_object_put(o);
}

static void test_detach_and_tune_dry_run(void **state) {
    (void)state;
    fh_vmconf(FH, 100, "cores: 2\nmemory: 4096\n");
    assert_int_equal(run("attach", "100", "--type", "P40-2Q"), 0);
    char *before = fh_snapshot(FH);
    assert_int_equal(run("detach", "100", "--dry-run"), 0);
    assert_contains(R.out, "  modify " CONF "\n");
    assert_contains(R.out, "VM 100: would detach\n");
    assert_int_equal(run("detach", "100", "--dry-run", "--json"), 0);
    json_object *o = out_json();
    assert_string_equal(jget(o, "result"), "detached");
    json_object_put(o);
    assert_int_equal(
        run("tune", "100", "--param", "frame_rate_limiter=0", "--dry-run", "--json"), 0
    );
    o = out_json();
    char ch[512];
    changes_of(o, ch, sizeof(ch));
    assert_string_equal(ch, "modify " SETTINGS ";");
    assert_string_equal(jget(o, "result"), "tuned");
    json_object *t, *p;
    assert_true(json_object_object_get_ex(o, "tuning", &t));
    assert_true(json_object_object_get_ex(t, "params", &p));
    assert_string_equal(jget(p, "frame_rate_limiter"), "0");
    json_object_put(o);
    /* a refusal under --dry-run and --json: the error object, exit 1 */
    assert_int_equal(run("tune", "100", "--clear", "nope", "--dry-run", "--json"), 1);
    o = out_json();
    assert_string_equal(jget(o, "result"), "refused");
    json_object *err;
    assert_true(json_object_object_get_ex(o, "error", &err));
    assert_string_equal(jget(err, "message"), "VM 100 has no setting nope");
    json_object_put(o);
    assert_host_unchanged(FH, before);

    /* tune shows what is stored, as the same object */
    assert_int_equal(run("tune", "100", "--param", "frame_rate_limiter=0"), 0);
    assert_contains(R.out, "VM 100: vgpu_params frame_rate_limiter=0; applied at each start");
    assert_int_equal(run("tune", "100", "--json"), 0);
    o = out_json();
    assert_string_equal(jget(o, "result"), "shown");
    assert_true(json_object_object_get_ex(o, "tuning", &t));
    assert_true(json_object_object_get_ex(t, "params", &p));
    assert_string_equal(jget(p, "frame_rate_limiter"), "0");
    json_object_put(o);
    assert_int_equal(run("detach", "100", "--json"), 0);
    o = out_json();
    changes_of(o, ch, sizeof(ch));
    assert_string_equal(ch, "modify " CONF ";modify " SETTINGS ";");
    json_object_put(o);
}

#define ARGS "args: -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/" MDEV " -uuid " MDEV "\n"
#define HOOK "hookscript: local:snippets/pve-vgpu-hook\n"

/* The VM config after a command, byte for byte. */
static void conf_is(const char *want) {
    char *conf = fh_read_vmconf(FH, 100);
    assert_string_equal(conf, want);
    free(conf);
}

/* A running VM: args go into [PENDING] as qm set puts them (the hookscript is hot-plugged:
 * current config), and detach undoes it byte for byte. */
static void test_running_vm_pending(void **state) {
    (void)state;
    static const char orig[] = "cores: 2\nmemory: 4096\n";
    fh_vmconf(FH, 100, orig);
    fh_run_vm(FH, 100, 7100);
    assert_int_equal(run("attach", "100", "--type", "P40-2Q", "--json"), 0);
    json_object *o = out_json();
    assert_string_equal(jget(o, "pending"), "true");
    assert_contains(
        jget(o, "message"), "; pending until VM 100 is stopped and started ('qm config 100 "
                            "--current' shows the running config)"
    );
    json_object_put(o);
    conf_is("cores: 2\n" HOOK "memory: 4096\n\n[PENDING]\n" ARGS);
    /* check predicts the next start: the pending args with their mdev */
    fh_stop_vm(FH, 100);
    assert_int_equal(run("check", "100"), 0);
    assert_contains(R.out, MDEV);
    fh_run_vm(FH, 100, 7100);
    assert_int_equal(run("detach", "100"), 0);
    assert_contains(R.out, "VM 100: detached\n"); /* nothing is left pending */
    conf_is(orig);

    /* args of its own, and other pending changes and a snapshot after them */
    static const char own[] = "args: -cpu host\ncores: 2\n\n[PENDING]\nmemory: 8192\n\n"
                              "[snap1]\ncores: 2\n";
    fh_vmconf(FH, 100, own);
    assert_int_equal(run("attach", "100", "--type", "P40-2Q"), 0);
    conf_is("args: -cpu host\ncores: 2\n" HOOK "\n[PENDING]\nargs: -cpu host -device "
            "vfio-pci,sysfsdev=/sys/bus/mdev/devices/" MDEV " -uuid " MDEV "\nmemory: 8192\n\n"
            "[snap1]\ncores: 2\n");
    assert_int_equal(run("detach", "100"), 0);
    conf_is(own);

    /* attached while stopped, detached while running: "delete: args"; attach again: gone */
    fh_stop_vm(FH, 100);
    fh_vmconf(FH, 100, orig);
    assert_int_equal(run("attach", "100", "--type", "P40-2Q"), 0);
    static const char attached[] = ARGS "cores: 2\n" HOOK "memory: 4096\n";
    conf_is(attached);
    fh_run_vm(FH, 100, 7100);
    assert_int_equal(run("detach", "100"), 0);
    conf_is(ARGS "cores: 2\nmemory: 4096\n\n[PENDING]\ndelete: args\n");
    assert_contains(R.out, "VM 100: detached; pending until VM 100 is stopped and started");
    assert_int_equal(run("attach", "100", "--type", "P40-2Q", "--dry-run", "--json"), 0);
    o = out_json();
    assert_string_equal(jget(o, "pending"), "false"); /* the current args are the ones wanted */
    json_object_put(o);
    assert_int_equal(run("attach", "100", "--type", "P40-2Q"), 0);
    conf_is(attached);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_attach_dry_run_and_json),
        T(test_detach_and_tune_dry_run),
        T(test_running_vm_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
