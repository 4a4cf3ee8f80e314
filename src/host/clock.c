#include "clock.h"

#include <errno.h>
#include <sys/timex.h>

int clock_synced(bool *synced) {
    struct timex tx = {0}; /* modes 0: read only */
    if (ntp_adjtime(&tx) < 0) {
        return -errno;
    }
    *synced = !(tx.status & STA_UNSYNC);
    return 0;
}
