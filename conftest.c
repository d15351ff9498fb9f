/* confdefs.h */
#define PACKAGE_NAME "qwenrelay"
#define PACKAGE_TARNAME "qwenrelay"
#define PACKAGE_VERSION "0.1.0"
#define PACKAGE_STRING "qwenrelay 0.1.0"
#define PACKAGE_BUGREPORT ""
#define PACKAGE_URL ""
#define PACKAGE "qwenrelay"
#define VERSION "0.1.0"
/* end confdefs.h.  */
#include <stdio.h>
int
main (void)
{
FILE *f = fopen ("conftest.out", "w");
 return ferror (f) || fclose (f) != 0;

  ;
  return 0;
}
