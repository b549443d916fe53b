/*
 * What a static x86_64 guest helper without a libc needs (machine/agent/):
 * raw system calls, the two functions the compiler may call, and _start.
 * pty.c uses it; agent.c has its own copy of the same (to be moved here).
 */
#ifndef ATTESTFS_AGENT_NOLIBC_H
#define ATTESTFS_AGENT_NOLIBC_H

#include <stddef.h>

static inline long
nl_syscall(long n, long a, long b, long c, long d)
{
	register long r10 __asm__("r10") = d;
	long r;

	__asm__ volatile("syscall"
			 : "=a"(r)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
	return r;
}

#ifdef AGENT_NOLIBC
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);

void *
memcpy(void *d, const void *s, size_t n)
{
	char *o = d;
	const char *i = s;

	while (n--)
		*o++ = *i++;
	return d;
}

void *
memset(void *d, int c, size_t n)
{
	char *p = d;

	while (n--)
		*p++ = (char)c;
	return d;
}

/* _start calls FN(sp): sp[0] is argc, then argv, NULL, envp, NULL. */
#define NOLIBC_START(fn)                                                      \
	__asm__(".text\n.global _start\n_start:\n\txor %rbp,%rbp\n"            \
		"\tmov %rsp,%rdi\n\tand $-16,%rsp\n\tcall " #fn "\n\thlt\n")
#endif

#endif
