/* Our JSON settings: defaults, every key, errors with position, unknown keys as warnings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"

#include <errno.h>
#include <string.h>

static int
parse(const char *text, struct pvh_config *c, struct pvh_warnings *w, struct pvh_err *e) {
    struct config_error ce;
    memset(w, 0, sizeof(*w));
    int r = config_parse(text, strlen(text), "/etc/pve/vgpu-hook.json", c, NULL, w, &ce);
    if (r < 0) {
        *e = ce.err;
    }
    return r;
}

static void test_defaults(void **state) {
    (void)state;
    struct pvh_config c;
    struct pvh_warnings w;
    struct pvh_err e;
    assert_int_equal(parse("{}", &c, &w, &e), 0);
    /* never stricter than the driver by default; NVIDIA's series mix at equal size */
    assert_int_equal(c.policy, POLICY_AUTO);
    assert_int_equal(c.nseries_groups, 1);
    assert_string_equal(c.series_groups[0], "ABCQ");
    assert_int_equal(c.lock_timeout_s, 10);
    assert_int_equal(c.hook_timeout_s, 120);
    assert_int_equal(c.placement, PLACEMENT_PACK);
    assert_int_equal(c.uuid_args, UUID_ARGS_AUTO);
    assert_int_equal(c.uuid_source, UUID_SOURCE_MDEV);
    assert_int_equal(c.remove_wait_s, 10);
    assert_true(c.reclaim_stale);
    assert_int_equal(w.n, 0);
    config_free(&c);
}

static void test_full(void **state) {
    (void)state;
    const char *text =
        "{\n"
        " \"policy\": \"mixed-size\", \"series_groups\": [[\"Q\",\"C\"],[\"A\",\"B\"]],\n"
        " \"placement\": \"spread\", \"uuid_args\": \"always\",\n"
        " \"uuid_source\": \"smbios\", \"remove_wait_s\": 0, \"reclaim_stale\": false,\n"
        " \"vms\": {\n"
        "   \"100\": {\"type\": \"GRID P40-2Q\", \"gpus\": [\"06:00.0\", \"0000:07:00.0\"], "
        "\"index\": 1},\n"
        "   \"101\": {\"type\": \"nvidia-47\", \"gpus\": {\"pve1\": [\"0000:06:00.0\"], \"pve2\": "
        "[]}}\n"
        " },\n"
        " \"future\": 1\n"
        "}\n";
    struct pvh_config c;
    struct pvh_warnings w;
    struct pvh_err e;
    assert_int_equal(parse(text, &c, &w, &e), 0);
    assert_int_equal(c.policy, POLICY_MIXED_SIZE);
    assert_int_equal(c.nseries_groups, 2);
    assert_string_equal(c.series_groups[1], "AB");
    assert_int_equal(c.placement, PLACEMENT_SPREAD);
    assert_int_equal(c.uuid_args, UUID_ARGS_ALWAYS);
    assert_int_equal(c.uuid_source, UUID_SOURCE_SMBIOS);
    assert_int_equal(c.remove_wait_s, 0);
    assert_false(c.reclaim_stale);
    const struct vm_settings *v = config_vm(&c, 100);
    assert_non_null(v);
    assert_string_equal(v->type, "GRID P40-2Q");
    assert_int_equal(v->index, 1);
    assert_int_equal(v->nlists, 1);
    assert_int_equal(v->lists[0].n, 2);
    assert_string_equal(v->lists[0].gpus[0], "0000:06:00.0");
    v = config_vm(&c, 101);
    assert_int_equal(v->nlists, 2);
    assert_string_equal(v->lists[0].node, "pve1");
    assert_int_equal(v->lists[1].n, 0);
    assert_null(config_vm(&c, 102));
    assert_int_equal(w.n, 1);
    assert_non_null(strstr(w.items[0], "unknown key \"future\""));
    warn_free(&w);
    config_free(&c);
}

static void test_errors(void **state) {
    (void)state;
    static const struct {
        const char *text;
        const char *msg;
    } cases[] = {
        {"{\n  \"policy\": \"equal-size\",\n  oops\n}", "vgpu-hook.json:3:3: invalid JSON"},
        {"{\"policy\": \"equal-size\"", "1:24: invalid JSON: unexpected end of file"},
        {"{} {}", "1:4: invalid JSON"},
        {"", "invalid JSON"},
        {"{\"policy\": \"none\",}", "1:19: invalid JSON"}, /* trailing comma */
        {"{\"policy\": 'none'}", "invalid JSON"},
        {"[]", "must be a JSON object"},
        {"{\"policy\": \"fair\"}", "\"policy\" must be one of: \"auto\" \"equal-size\""},
        {"{\"policy\": 3}", "\"policy\" must be one of"},
        {"{\"placement\": \"random\"}", "\"placement\" must be one of"},
        {"{\"remove_wait_s\": -1}", "\"remove_wait_s\" must be a whole number"},
        {"{\"remove_wait_s\": 1.5}", "\"remove_wait_s\" must be a whole number"},
        {"{\"reclaim_stale\": \"yes\"}", "\"reclaim_stale\" must be true or false"},
        {"{\"series_groups\": [[\"Q\",\"X\"]]}", "\"series_groups\" must be a list"},
        {"{\"series_groups\": \"QC\"}", "\"series_groups\" must be a list"},
        {"{\"vms\": []}", "\"vms\" must be an object"},
        {"{\"vms\": {\"99\": {\"type\": \"x\"}}}", "\"vms.99\" is not a VMID"},
        {"{\"vms\": {\"100\": {}}}", "\"vms.100\" needs \"type\""},
        {"{\"vms\": {\"100\": {\"type\": \"x\", \"index\": 16}}}", "\"vms.100.index\" must be"},
        {"{\"vms\": {\"100\": {\"type\": \"x\", \"gpus\": [\"nope\"]}}}",
         "\"vms.100.gpus\" must be a list of PCI ids"},
        /* a type is validated like a hostpci mdev= (names may have blanks) */
        /* a type that is there but unusable is invalid, and named: never "missing" */
        {"{\"vms\": {\"100\": {\"type\": \"../../nvidia-46\"}}}",
         "\"vms.100.type\" is \"../../nvidia-46\", which is not a vGPU type"},
        {"{\"vms\": {\"100\": {\"type\": \"a\\u001b[31m\"}}}",
         "\"vms.100.type\" is \"a\\x1b[31m\", which is not a vGPU type"},
        {"{\"vms\": {\"100\": {\"type\": 46}}}", "\"vms.100.type\" must be a string"},
        {"{\"vms\": {\"100\": {\"type\": "
         "\"nvidia-"
         "4600000000000000000000000000000000000000000000000000000000000000000000000000000000"
         "000000000000000000000000000000000000000000000000\"}}}",
         "which is not a vGPU type: a type id (nvidia-46) or name (GRID P40-2Q) has letters, "
         "digits, "
         "blanks, '-', '_' and '+' only, at most 127 bytes"},
        {"{\"vms\": {\"100\": {\"type\": \"x\", \"gpus\": {\"bad/node\": []}}}}",
         "\"vms.100.gpus\" must be keyed by node names, and \"bad/node\" is none"},
        /* an FQDN (attach --gpu took one before node names followed Proxmox's format) */
        {"{\"vms\": {\"100\": {\"type\": \"x\", \"gpus\": {\"pve1.lan\": []}}}}",
         "\"vms.100.gpus\" must be keyed by node names, and \"pve1.lan\" is none: a Proxmox node "
         "name has letters, digits and '-' only (no '.': the short host name, as in "
         "/etc/pve/nodes), at most 63"},
        {"{\"vms\": {\"100\": {\"type\": \"x\", \"attached\": {\"args_before\": \"a\\nb\"}}}}",
         "written by attach"},
        {"{\"lock_timeout_s\": 0}", "\"lock_timeout_s\" must be a whole number of seconds from 1"},
        {"{\"hook_timeout_s\": 4000}", "\"hook_timeout_s\" must be a whole number"},
        {"{\"series_groups\": [[\"Q\",\"Q\"]]}", "\"series_groups\" must be a list"},
        /* json-c keeps the last of two equal keys silently: we refuse, with where */
        {"{\"policy\": \"auto\",\n \"policy\": \"none\"}",
         "vgpu-hook.json:2:2: the key \"policy\" appears twice"},
        {"{\"vms\": {\"100\": {\"type\": \"x\"},\n\"100\": {\"type\": \"y\"}}}",
         ":2:1: the key \"100\" appears twice"},
        /* a bad value is named with its key's line and column too */
        {"{\"vms\": {\"100\": {\"type\": \"x\",\n  \"index\": 16}}}",
         "vgpu-hook.json:2:3: \"vms.100.index\" must be"},
        {"{\n \"policy\": \"bogus\"}", "vgpu-hook.json:2:2: \"policy\" must be one of"},
        {"{\"params\": {\"policy\": 1},\n\"policy\": 1}", ":2:1: \"policy\" must be"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pvh_config c;
        struct pvh_warnings w;
        struct pvh_err e = {0};
        int rc = parse(cases[i].text, &c, &w, &e);
        if (rc != -EINVAL || !strstr(e.msg, cases[i].msg)) {
            fail_msg(
                "'%s': rc %d, message '%s' lacks '%s'", cases[i].text, rc, e.msg, cases[i].msg
            );
        }
        assert_true(e.hint[0] != '\0');
        warn_free(&w);
    }
}

/* Never half a file: values before the error do not count. */
static void test_error_leaves_defaults(void **state) {
    (void)state;
    struct pvh_config c;
    struct pvh_warnings w;
    struct pvh_err e = {0};
    assert_int_equal(parse("{\"policy\": \"none\", \"remove_wait_s\": -1}", &c, &w, &e), -EINVAL);
    assert_int_equal(c.policy, POLICY_AUTO);
    assert_int_equal(c.remove_wait_s, 10);
    config_free(&c);
    warn_free(&w);
}

/* The same key in different objects, or nested, is no duplicate. */
static void test_not_duplicates(void **state) {
    (void)state;
    struct pvh_config c;
    struct pvh_warnings w;
    struct pvh_err e = {0};
    const char *text = "{\"vms\": {\"100\": {\"type\": \"P40-1Q\", \"index\": 0},"
                       " \"101\": {\"type\": \"P40-1Q\", \"index\": 1,"
                       " \"gpus\": {\"pve1\": [\"0000:06:00.0\"], \"pve2\": [\"0000:06:00.0\"]}}},"
                       " \"series_groups\": [[\"A\",\"B\"],[\"C\",\"Q\"]], \"note\": \"type\"}";
    assert_int_equal(parse(text, &c, &w, &e), 0);
    assert_int_equal(c.nvms, 2);
    assert_string_equal(c.vms[1].type, "P40-1Q");
    assert_int_equal(c.nseries_groups, 2);
    assert_string_equal(c.series_groups[1], "CQ");
    config_free(&c);
    warn_free(&w);
}

/* Node names as Proxmox's pve-node format takes them: they become paths and map lines. */
static void test_node_names(void **state) {
    (void)state;
    static const struct {
        const char *name;
        bool valid;
    } cases[] = {
        {"pve1", true}, {"a", true},      {"node-01", true},  {"PVE", true},    {"", false},
        {".", false},   {"..", false},    {"pve.lan", false}, {"-pve", false},  {"pve-", false},
        {"a/b", false}, {"pve 1", false}, {"pve,1", false},   {"pve=1", false}, {"p\nve", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (node_name_valid(cases[i].name) != cases[i].valid) {
            fail_msg("node_name_valid(\"%s\") should be %d", cases[i].name, cases[i].valid);
        }
    }
    char longest[NODE_NAME_MAX];
    memset(longest, 'a', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    assert_true(node_name_valid(longest));
    char too_long[NODE_NAME_MAX + 1];
    memset(too_long, 'a', sizeof(too_long) - 1);
    too_long[sizeof(too_long) - 1] = '\0';
    assert_false(node_name_valid(too_long));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_names), cmocka_unit_test(test_not_duplicates),
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_full),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_error_leaves_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
