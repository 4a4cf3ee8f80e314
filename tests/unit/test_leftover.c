/* The one leftover verdict (decide/leftover): a table of every case post-stop, cleanup, status,
 * metrics and placement meet, and what each of them then does. No host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "leftover.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *what;
    bool ours;
    enum vm_state state;
    unsigned long vmid, self;
    enum leftover_verdict verdict;
    bool removable;
    const char *shown; /* status' and metrics' state */
} CASES[] = {
    {"a UUID not in the VMID scheme", false, VM_NOT_OURS, 0, 0, LEFTOVER_NOT_OURS, false,
     "not a VMID UUID"},
    {"not ours, even at a stop", false, VM_NOT_OURS, 0, 100, LEFTOVER_NOT_OURS, false,
     "not a VMID UUID"},
    {"its VM runs", true, VM_RUNNING, 100, 0, LEFTOVER_RUNNING, false, "running"},
    {"its VM starts or stops", true, VM_BUSY, 100, 0, LEFTOVER_BUSY, false, "busy"},
    {"its VM is stopped", true, VM_STOPPED, 100, 0, LEFTOVER_STALE, true, "leftover"},
    {"a VF no VM names", true, VM_NOT_OURS, 0, 0, LEFTOVER_STALE, true, "leftover"},
    {"post-stop: the stopping VM's own", true, VM_BUSY, 100, 100, LEFTOVER_OWN, true, "leftover"},
    {"post-stop: its VM started again", true, VM_RUNNING, 100, 100, LEFTOVER_RUNNING, false,
     "running"},
    {"post-stop: another VM starting", true, VM_BUSY, 101, 100, LEFTOVER_BUSY, false, "busy"},
    {"post-stop: another VM's leftover", true, VM_STOPPED, 101, 100, LEFTOVER_STALE, true,
     "leftover"},
};

static void test_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
        enum leftover_verdict v =
            leftover_verdict(CASES[i].ours, CASES[i].state, CASES[i].vmid, CASES[i].self);
        if (v != CASES[i].verdict || leftover_removable(v) != CASES[i].removable ||
            strcmp(leftover_state_name(v), CASES[i].shown)) {
            fail_msg(
                "%s: verdict %d (want %d), removable %d, shown '%s' (want '%s')", CASES[i].what,
                (int)v, (int)CASES[i].verdict, leftover_removable(v), leftover_state_name(v),
                CASES[i].shown
            );
        }
    }
}

/* An mdev of the model: its UUID decides whether it is ours. */
static void test_mdev(void **state) {
    (void)state;
    struct inv_mdev m = {.owned = true, .vmid = 100, .state = VM_STOPPED};
    assert_int_equal(leftover_of_mdev(&m, 0), LEFTOVER_STALE);
    assert_int_equal(leftover_of_mdev(&m, 100), LEFTOVER_OWN);
    m.owned = false;
    assert_int_equal(leftover_of_mdev(&m, 0), LEFTOVER_NOT_OURS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_mdev),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
