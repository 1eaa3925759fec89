/* How Valgrind counts a `rep stosb`: one instruction per byte stored.
 *
 *   gcc -O2 -o rep harness/ci/rep-count.c
 *   for n in 1 4096 65536; do valgrind --tool=callgrind --callgrind-out-file=/dev/null ./rep $n 2>&1 | grep Collected; done
 *
 * Each run stores N bytes 1,000 times with one `rep stosb` (as glibc's
 * memset does above about 2 KiB). On the AMD runner (valgrind 3.19):
 * 138,123 / 4,233,163 / 65,673,193 instructions collected, so about N + 100
 * per call, where the hardware runs a 4 KiB `rep stosb` in tens of cycles.
 * See README.md, "The regression gate", for what this means for counted
 * figures. */
#include <stdlib.h>
#include <stdio.h>
int main(int argc,char**argv){ size_t n=atoi(argv[1]); char*buf=malloc(n+64); long sum=0;
 for(int i=0;i<1000;i++){ char*d=buf; size_t c=n; __asm__ volatile("rep stosb" : "+D"(d), "+c"(c) : "a"(i&1) : "memory"); sum+=buf[n-1];}
 printf("%ld\n",sum); return 0;}
