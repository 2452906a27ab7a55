/* sweep.h: the auth service's retention sweep (sweep.c). */
#ifndef AUTH_SWEEP_H
#define AUTH_SWEEP_H

#include <stdbool.h>

/* One pass.  Returns the rows deleted, or -1 when a step could not run. */
int auth_sweep_once(void);
/* `build/auth.fcgi --sweep[-once]`: sets up config, log and DB itself;
 * returns the process exit code. */
int auth_sweep_main(bool once);

#endif
