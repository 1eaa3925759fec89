// First-touch cost of fresh anonymous memory on this machine, in ns per
// 4 KiB page, per GiB touched: what a fill of live instances pays for each
// page of heap and linear memory it dirties. README, "Round 2 on the AMD
// EPYC runner", has what it showed there.
//
//   gcc -O2 -o first-touch harness/ci/first-touch.c
//   ./first-touch GIB HUGE PAUSE REPS
//
// GIB: GiB mapped and touched per repetition (one byte per 4 KiB page);
// HUGE: 1 to madvise(MADV_HUGEPAGE) the mapping, 0 for MADV_NOHUGEPAGE;
// PAUSE: seconds to sleep after each munmap (lets a guest kernel report the
// freed memory to its host, where it does so); REPS: repetitions.
// The mapping is MAP_NORESERVE; it needs GIB of free RAM.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){
  if(argc!=5){fprintf(stderr,"usage: %s GIB HUGE(0|1) PAUSE_SECONDS REPS\n",argv[0]);return 2;}
  size_t gib=atoi(argv[1]); int huge=atoi(argv[2]); int pause_s=atoi(argv[3]); int reps=atoi(argv[4]);
  size_t len=gib<<30;
  for(int r=0;r<reps;r++){
    char*p=mmap(0,len+(2<<20),PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE,-1,0);
    if(p==MAP_FAILED){perror("mmap");return 1;}
    char*a=(char*)(((unsigned long)p+(2<<20)-1)&~((2UL<<20)-1));
    madvise(a,len,huge?MADV_HUGEPAGE:MADV_NOHUGEPAGE);
    double t0=now();
    double tp=t0; char seg[4096]; int o=0;
    for(size_t g=0;g<gib;g++){ for(size_t i=g<<30;i<((g+1)<<30);i+=4096)a[i]=1; double tn=now(); o+=snprintf(seg+o,sizeof seg-o," %.0f",(tn-tp)/(1<<18)*1e9); tp=tn; }
    double t1=now();
    printf("rep %d huge=%d: %.0f ns per 4 KiB page (%.2f s for %zu GiB); per GiB:%s\n",r,huge,(t1-t0)/(len/4096)*1e9,t1-t0,gib,seg);
    fflush(stdout);
    munmap(p,len+(2<<20));
    if(pause_s)sleep(pause_s);
  }
  return 0;
}
