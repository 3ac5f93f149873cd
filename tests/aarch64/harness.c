// Standalone test of gort's aarch64 context switch (src/arch/aarch64.S).
//
// Built together with the very same assembly file the Rust crate includes,
// for aarch64 Linux, and run natively or under qemu-aarch64:
//
//   aarch64-linux-gnu-gcc -O2 -Wall -Wextra -Werror -funwind-tables -static
//       -o harness tests/aarch64/harness.c src/arch/aarch64.S
//   qemu-aarch64 ./harness
//
// tests/arch_aarch64_qemu.rs does exactly this. The program prints one line
// per test and then a summary line, "aarch64 harness: PASS" or
// "aarch64 harness: FAIL (...)", and exits non-zero on failure.
//
// The frame layout checked in test_init_frame is the one drawn at the top of
// aarch64.S.

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <unwind.h>

// ---------------------------------------------------------------------------
// The interface of aarch64.S, as src/arch/aarch64.rs declares it.

typedef struct {
    uintptr_t arg; // x0
    void *from;    // x1
} transfer_t;

typedef void (*entry_fn)(uintptr_t arg, void *from, void *ctx) __attribute__((noreturn));

extern transfer_t gort_switch(void *to, uintptr_t arg);
extern void gort_exit(void *to, uintptr_t arg) __attribute__((noreturn));
extern void *gort_init_stack(void *top, entry_fn entry, void *ctx);
extern const char gort_trampoline[];

#define INIT_FRAME_SIZE 160

// ---------------------------------------------------------------------------
// Assembly helpers.
//
// uintptr_t current_sp(void): the caller's sp at the call. A C function's sp
// is constant after its prologue (-O2, no alloca), so a gort_switch called
// from the same function saves the context at exactly current_sp() - 160.
//
// uint32_t probe_switch(void *to, uintptr_t arg, transfer_t *out,
//                       const uint64_t pat[19]):
// loads pat[0..9] into x19-x28, pat[10] into x29 and pat[11..18] into d8-d15,
// calls gort_switch(to, arg), stores the Transfer in *out, and returns a
// bitmask of the registers that no longer hold their pattern (bit k for
// pat[k]; bit 19: sp moved). The caller's own callee-saved registers are
// preserved as the ABI demands. Whoever runs in between (the other side of
// the switch) does the same with its own, different patterns, so a register
// the switch fails to save or restore shows up as a set bit.

#define PROBE_REGS 19
#define PROBE_SP_BIT 19

__asm__(
    "    .text\n"
    "    .p2align 4\n"
    "    .globl current_sp\n"
    "    .type current_sp, %function\n"
    "current_sp:\n"
    "    .cfi_startproc\n"
    "    mov x0, sp\n"
    "    ret\n"
    "    .cfi_endproc\n"
    "    .size current_sp, . - current_sp\n"
    "\n"
    "    .macro probe_check_x reg, off, bit\n"
    "    ldr x4, [x3, #\\off]\n"   // expected pattern
    "    cmp \\reg, x4\n"
    "    cset w5, ne\n"
    "    orr w0, w0, w5, lsl #\\bit\n"
    "    .endm\n"
    "    .macro probe_check_d reg, off, bit\n"
    "    ldr x4, [x3, #\\off]\n"
    "    fmov x6, \\reg\n"         // raw 64 bits, NaN patterns included
    "    cmp x6, x4\n"
    "    cset w5, ne\n"
    "    orr w0, w0, w5, lsl #\\bit\n"
    "    .endm\n"
    "\n"
    "    .p2align 4\n"
    "    .globl probe_switch\n"
    "    .type probe_switch, %function\n"
    "probe_switch:\n"
    "    .cfi_startproc\n"
    // Frame: caller's x29,x30 | x19-x28 | d8-d15 | out, pat | sp, pad
    "    stp x29, x30, [sp, #-192]!\n"
    "    .cfi_def_cfa_offset 192\n"
    "    .cfi_offset x29, -192\n"
    "    .cfi_offset x30, -184\n"
    "    stp x19, x20, [sp, #16]\n"
    "    stp x21, x22, [sp, #32]\n"
    "    stp x23, x24, [sp, #48]\n"
    "    stp x25, x26, [sp, #64]\n"
    "    stp x27, x28, [sp, #80]\n"
    "    stp d8, d9, [sp, #96]\n"
    "    stp d10, d11, [sp, #112]\n"
    "    stp d12, d13, [sp, #128]\n"
    "    stp d14, d15, [sp, #144]\n"
    "    stp x2, x3, [sp, #160]\n"      // out, pat
    "    mov x4, sp\n"
    "    str x4, [sp, #176]\n"          // sp before the switch
    // Load the patterns (x29 included: nothing here uses the frame pointer).
    "    ldp x19, x20, [x3, #0]\n"
    "    ldp x21, x22, [x3, #16]\n"
    "    ldp x23, x24, [x3, #32]\n"
    "    ldp x25, x26, [x3, #48]\n"
    "    ldp x27, x28, [x3, #64]\n"
    "    ldr x29, [x3, #80]\n"
    "    ldp d8, d9, [x3, #88]\n"
    "    ldp d10, d11, [x3, #104]\n"
    "    ldp d12, d13, [x3, #120]\n"
    "    ldp d14, d15, [x3, #136]\n"
    "    bl gort_switch\n"              // x0 = to, x1 = arg
    // Back: x0 = arg, x1 = from. Compare everything.
    "    ldp x2, x3, [sp, #160]\n"
    "    stp x0, x1, [x2]\n"            // *out = transfer
    "    mov w0, wzr\n"
    "    probe_check_x x19, 0, 0\n"
    "    probe_check_x x20, 8, 1\n"
    "    probe_check_x x21, 16, 2\n"
    "    probe_check_x x22, 24, 3\n"
    "    probe_check_x x23, 32, 4\n"
    "    probe_check_x x24, 40, 5\n"
    "    probe_check_x x25, 48, 6\n"
    "    probe_check_x x26, 56, 7\n"
    "    probe_check_x x27, 64, 8\n"
    "    probe_check_x x28, 72, 9\n"
    "    probe_check_x x29, 80, 10\n"
    "    probe_check_d d8, 88, 11\n"
    "    probe_check_d d9, 96, 12\n"
    "    probe_check_d d10, 104, 13\n"
    "    probe_check_d d11, 112, 14\n"
    "    probe_check_d d12, 120, 15\n"
    "    probe_check_d d13, 128, 16\n"
    "    probe_check_d d14, 136, 17\n"
    "    probe_check_d d15, 144, 18\n"
    "    ldr x4, [sp, #176]\n"
    "    mov x6, sp\n"
    "    cmp x6, x4\n"
    "    cset w5, ne\n"
    "    orr w0, w0, w5, lsl #19\n"     // PROBE_SP_BIT
    // Restore the caller's registers.
    "    ldp x19, x20, [sp, #16]\n"
    "    ldp x21, x22, [sp, #32]\n"
    "    ldp x23, x24, [sp, #48]\n"
    "    ldp x25, x26, [sp, #64]\n"
    "    ldp x27, x28, [sp, #80]\n"
    "    ldp d8, d9, [sp, #96]\n"
    "    ldp d10, d11, [sp, #112]\n"
    "    ldp d12, d13, [sp, #128]\n"
    "    ldp d14, d15, [sp, #144]\n"
    "    ldp x29, x30, [sp], #192\n"
    "    .cfi_def_cfa_offset 0\n"
    "    .cfi_restore x29\n"
    "    .cfi_restore x30\n"
    "    ret\n"
    "    .cfi_endproc\n"
    "    .size probe_switch, . - probe_switch\n");

extern uintptr_t current_sp(void);
extern uint32_t probe_switch(void *to, uintptr_t arg, transfer_t *out,
                             const uint64_t pat[PROBE_REGS]);

static const char *const probe_names[PROBE_REGS + 1] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15", "sp",
};

// ---------------------------------------------------------------------------
// Bookkeeping.

static unsigned long checks, failures;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        checks++;                                                            \
        if (!(cond)) {                                                       \
            if (failures++ < 20) {                                           \
                fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__,       \
                        __LINE__, #cond);                                    \
                fprintf(stderr, __VA_ARGS__);                                \
                fputc('\n', stderr);                                         \
            }                                                                \
        }                                                                    \
    } while (0)

static void report(const char *name, unsigned long failures_before) {
    printf("%s %s\n", failures == failures_before ? "ok  " : "FAIL", name);
    fflush(stdout);
}

// Coroutine stacks: mmap'd, with a PROT_NONE guard page at the low end.
#define STACK_SIZE (256 * 1024)

struct stack {
    char *base; // lowest usable byte (just above the guard page)
    char *top;  // exclusive high end, 16-aligned
    size_t page;
};

static struct stack stack_new(void) {
    struct stack s;
    s.page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, STACK_SIZE + s.page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    if (mprotect(m, s.page, PROT_NONE) != 0) {
        perror("mprotect");
        exit(2);
    }
    s.base = m + s.page;
    s.top = m + s.page + STACK_SIZE;
    return s;
}

static void stack_free(struct stack *s) {
    munmap(s->base - s->page, STACK_SIZE + s->page);
}

static int on_stack(const struct stack *s, const void *p) {
    return (const char *)p >= s->base && (const char *)p < s->top;
}

// The context a gort_switch made in the calling function saves: see
// current_sp above.
#define HERE_SAVED_SP() ((void *)(current_sp() - INIT_FRAME_SIZE))

// ---------------------------------------------------------------------------
// 1. gort_init_stack writes the documented frame.

static __attribute__((noreturn)) void never_run_entry(uintptr_t arg, void *from, void *ctx) {
    (void)arg, (void)from, (void)ctx;
    abort();
}

static void test_init_frame(void) {
    unsigned long f0 = failures;
    struct stack s = stack_new();
    memset(s.top - 512, 0xee, 512);
    int ctx;
    uint64_t *sp = gort_init_stack(s.top, never_run_entry, &ctx);
    CHECK((char *)sp == s.top - INIT_FRAME_SIZE, "sp=%p top=%p", (void *)sp, (void *)s.top);
    for (int i = 0; i < INIT_FRAME_SIZE / 8; i++) {
        uint64_t want = 0;
        if (i == 8) want = (uintptr_t)never_run_entry; // x19 = entry
        if (i == 9) want = (uintptr_t)&ctx;            // x20 = ctx
        if (i == 19) want = (uintptr_t)gort_trampoline; // x30
        CHECK(sp[i] == want, "slot %d (S+%d) = %#llx, want %#llx", i, i * 8,
              (unsigned long long)sp[i], (unsigned long long)want);
    }
    CHECK(((uint8_t *)sp)[-1] == 0xee, "wrote below the frame");
    stack_free(&s);
    report("init_stack writes the documented 160-byte frame", f0);
}

// ---------------------------------------------------------------------------
// 2. The entry receives (arg, from, ctx) exactly, on an aligned stack right
//    below top, and unwinding from inside it stops at gort_trampoline.

struct bt {
    int n;
    uintptr_t ip[64];
};

static _Unwind_Reason_Code bt_frame(struct _Unwind_Context *c, void *p) {
    struct bt *b = p;
    if (b->n == 64) return _URC_NORMAL_STOP; // runaway walk: give up
    b->ip[b->n++] = _Unwind_GetIP(c);
    return _URC_NO_REASON;
}

struct entry_probe {
    uintptr_t arg;
    void *from;
    void *ctx;
    uintptr_t sp;
    int bt_code;
    struct bt bt;
};

static __attribute__((noinline)) void backtrace_here(struct entry_probe *p) {
    p->bt.n = 0;
    p->bt_code = _Unwind_Backtrace(bt_frame, &p->bt);
    __asm__ volatile("" ::: "memory"); // keep this a real (non-tail) call
}

static __attribute__((noreturn)) void probe_entry(uintptr_t arg, void *from, void *ctx) {
    struct entry_probe *p = ctx;
    p->arg = arg;
    p->from = from;
    p->ctx = ctx;
    p->sp = current_sp();
    backtrace_here(p);
    gort_exit(from, ~arg);
}

static void test_entry_args(void) {
    unsigned long f0 = failures;
    struct stack s = stack_new();
    struct entry_probe p;
    memset(&p, 0, sizeof p);
    const uintptr_t word = 0x0123456789abcdefu;
    void *co = gort_init_stack(s.top, probe_entry, &p);
    void *expect_from = HERE_SAVED_SP();
    transfer_t t = gort_switch(co, word);
    CHECK(p.arg == word, "entry arg %#lx", (unsigned long)p.arg);
    CHECK(p.ctx == &p, "entry ctx %p, want %p", p.ctx, (void *)&p);
    CHECK(p.from == expect_from, "entry from %p, want %p", p.from, expect_from);
    CHECK(p.sp % 16 == 0, "entry sp %#lx misaligned", (unsigned long)p.sp);
    CHECK(p.sp < (uintptr_t)s.top && p.sp > (uintptr_t)s.top - 1024,
          "entry sp %#lx not just below top %p", (unsigned long)p.sp, (void *)s.top);
    CHECK(t.arg == ~word, "exit arg %#lx", (unsigned long)t.arg);
    CHECK(t.from == NULL, "exit from %p, want NULL", t.from);
    report("entry receives (arg, from, ctx) exactly, sp aligned", f0);

    // The unwinder must walk backtrace_here -> probe_entry -> gort_trampoline
    // and stop there with END_OF_STACK, the last frame being the return
    // address of the trampoline's `blr x19` (gort_trampoline + 8).
    f0 = failures;
    uintptr_t last = 0;
    for (int i = 0; i < p.bt.n; i++)
        if (p.bt.ip[i] != 0) last = p.bt.ip[i];
    CHECK(p.bt_code == _URC_END_OF_STACK, "_Unwind_Backtrace returned %d after %d frames",
          p.bt_code, p.bt.n);
    CHECK(last == (uintptr_t)gort_trampoline + 8, "last frame ip %#lx, want %p + 8",
          (unsigned long)last, (void *)gort_trampoline);
    CHECK(p.bt.n >= 3 && p.bt.n <= 6, "%d frames", p.bt.n);
    if (failures != f0)
        for (int i = 0; i < p.bt.n; i++)
            fprintf(stderr, "  frame %d: ip %#lx\n", i, (unsigned long)p.bt.ip[i]);
    report("_Unwind_Backtrace in a coroutine ends at gort_trampoline", f0);
    stack_free(&s);
}

// ---------------------------------------------------------------------------
// 3. Ping-pong: a million round trips, each word intact each way, and `from`
//    names the context that left (resuming it works, and it is the same
//    saved sp every time since both sides switch from the same place).

#define PINGPONG_ROUNDS 1000000u
#define PINGPONG_STOP 0u
#define PINGPONG_DONE 0xd0d0d0d0u

struct pingpong {
    unsigned long received, bad_arg, bad_from;
    void *main_from; // the `from` the coroutine saw first
};

static __attribute__((noreturn)) void pingpong_entry(uintptr_t arg, void *from, void *ctx) {
    struct pingpong *p = ctx;
    uintptr_t expect = 1; // main sends 1, 3, 5, ...; we answer 2, 4, 6, ...
    p->main_from = from;
    while (arg != PINGPONG_STOP) {
        p->received++;
        if (arg != expect) p->bad_arg++;
        if (from == NULL || from != p->main_from) p->bad_from++;
        transfer_t t = gort_switch(from, arg + 1);
        arg = t.arg;
        from = t.from;
        expect += 2;
    }
    gort_exit(from, PINGPONG_DONE);
}

static void test_pingpong(void) {
    unsigned long f0 = failures;
    struct stack s = stack_new();
    struct pingpong p;
    memset(&p, 0, sizeof p);
    void *co = gort_init_stack(s.top, pingpong_entry, &p);
    void *co_first = NULL;
    unsigned long bad_arg = 0, bad_from = 0;
    uintptr_t v = 1;
    for (unsigned i = 0; i < PINGPONG_ROUNDS; i++, v += 2) {
        transfer_t t = gort_switch(co, v);
        if (t.arg != v + 1) bad_arg++;
        if (i == 0) co_first = t.from;
        if (t.from == NULL || !on_stack(&s, t.from) || t.from != co_first) bad_from++;
        if (t.from == NULL) break; // cannot go on
        co = t.from;
    }
    void *expect_main = HERE_SAVED_SP();
    transfer_t t = gort_switch(co, PINGPONG_STOP);
    CHECK(t.arg == PINGPONG_DONE && t.from == NULL, "final transfer (%#lx, %p)",
          (unsigned long)t.arg, t.from);
    CHECK(bad_arg == 0, "main received %lu wrong words", bad_arg);
    CHECK(bad_from == 0, "main received %lu wrong froms", bad_from);
    CHECK(p.received == PINGPONG_ROUNDS, "coroutine received %lu words", p.received);
    CHECK(p.bad_arg == 0, "coroutine received %lu wrong words", p.bad_arg);
    CHECK(p.bad_from == 0, "coroutine received %lu wrong froms", p.bad_from);
    CHECK(p.main_from == expect_main, "coroutine's from %p, want %p", p.main_from,
          expect_main);
    stack_free(&s);
    char name[96];
    snprintf(name, sizeof name, "ping-pong: %u round trips (%u switches)", PINGPONG_ROUNDS,
             2 * PINGPONG_ROUNDS + 1);
    report(name, f0);
}

// ---------------------------------------------------------------------------
// 4. Callee-saved registers survive a switch, in both directions.

#define REG_ROUNDS 20000u

static void fill_pattern(uint64_t pat[PROBE_REGS], uint64_t side, uint64_t round) {
    for (int k = 0; k < PROBE_REGS; k++) {
        uint64_t x = side ^ (round << 20) ^ ((uint64_t)(k + 1) * 0x0101010101010101u);
        x ^= x >> 29;
        x *= 0xbf58476d1ce4e5b9u;
        x ^= x >> 32;
        pat[k] = x;
    }
}

struct regs {
    uint32_t mask;      // union of the coroutine's mismatch masks
    unsigned long bad;  // rounds with a bad word or from on the coroutine side
};

static __attribute__((noreturn)) void regs_entry(uintptr_t arg, void *from, void *ctx) {
    struct regs *r = ctx;
    uint64_t pat[PROBE_REGS];
    transfer_t t;
    for (uint64_t i = 0;; i++) {
        if (arg == UINTPTR_MAX) break;
        if (arg != 2 * i) r->bad++;
        fill_pattern(pat, 0x5a5a5a5a5a5a5a5au, i);
        r->mask |= probe_switch(from, 2 * i + 1, &t, pat);
        arg = t.arg;
        from = t.from;
        if (from == NULL) r->bad++;
    }
    gort_exit(from, 0);
}

static void print_mask(const char *who, uint32_t mask) {
    fprintf(stderr, "  %s: registers not preserved:", who);
    for (int k = 0; k <= PROBE_SP_BIT; k++)
        if (mask & (1u << k)) fprintf(stderr, " %s", probe_names[k]);
    fputc('\n', stderr);
}

static void test_registers(void) {
    unsigned long f0 = failures;
    struct stack s = stack_new();
    struct regs r = {0, 0};
    uint64_t pat[PROBE_REGS];
    uint32_t mask = 0;
    unsigned long bad = 0;
    transfer_t t;
    void *co = gort_init_stack(s.top, regs_entry, &r);
    // Round 0 enters the fresh coroutine; every later round resumes it.
    for (uint64_t i = 0; i < REG_ROUNDS; i++) {
        fill_pattern(pat, 0xa5a5a5a5a5a5a5a5u, i);
        mask |= probe_switch(co, 2 * i, &t, pat);
        if (t.arg != 2 * i + 1 || t.from == NULL) bad++;
        if (t.from == NULL) break;
        co = t.from;
    }
    t = gort_switch(co, UINTPTR_MAX);
    CHECK(t.from == NULL, "coroutine did not exit");
    CHECK(mask == 0, "main's registers changed across a round trip: mask %#x", mask);
    if (mask) print_mask("main", mask);
    CHECK(r.mask == 0, "coroutine's registers changed across a round trip: mask %#x", r.mask);
    if (r.mask) print_mask("coroutine", r.mask);
    CHECK(bad == 0 && r.bad == 0, "bad transfers: main %lu, coroutine %lu", bad, r.bad);
    stack_free(&s);
    char name[96];
    snprintf(name, sizeof name,
             "x19-x29, d8-d15, sp preserved both ways (%u round trips)", REG_ROUNDS);
    report(name, f0);
}

// ---------------------------------------------------------------------------
// 5. Sibling switch: main -> A, A -> B directly, B -> main; repeat.

#define SIBLING_ROUNDS 100000u
#define SIBLING_STOP UINTPTR_MAX

struct siblings {
    struct stack sa, sb;
    void *main_sp, *a_sp, *b_sp; // saved contexts, updated by whoever resumes
    void *expect_main;           // main's saved sp as main computes it
    unsigned long a_bad, b_bad, a_rounds, b_rounds;
};

static __attribute__((noreturn)) void sibling_a(uintptr_t arg, void *from, void *ctx) {
    struct siblings *g = ctx;
    for (uintptr_t r = 0;; r++) {
        // From main: word 3r + 1.
        if (arg != SIBLING_STOP && arg != 3 * r + 1) g->a_bad++;
        if (from != g->expect_main) g->a_bad++;
        g->main_sp = from;
        if (arg == SIBLING_STOP) break;
        g->a_rounds++;
        transfer_t t = gort_switch(g->b_sp, 3 * r + 2); // straight to B
        arg = t.arg;
        from = t.from;
    }
    gort_exit(g->main_sp, 0xaaaa);
}

static __attribute__((noreturn)) void sibling_b(uintptr_t arg, void *from, void *ctx) {
    struct siblings *g = ctx;
    for (uintptr_t r = 0;; r++) {
        // From A: word 3r + 2; or from main: stop.
        if (arg == SIBLING_STOP) {
            if (from != g->expect_main) g->b_bad++;
            g->main_sp = from;
            break;
        }
        if (arg != 3 * r + 2) g->b_bad++;
        if (from == NULL || !on_stack(&g->sa, from)) g->b_bad++;
        g->a_sp = from;
        g->b_rounds++;
        transfer_t t = gort_switch(g->main_sp, 3 * r + 3); // back to main
        arg = t.arg;
        from = t.from;
    }
    gort_exit(g->main_sp, 0xbbbb);
}

static void test_siblings(void) {
    unsigned long f0 = failures;
    struct siblings g;
    memset(&g, 0, sizeof g);
    g.sa = stack_new();
    g.sb = stack_new();
    g.a_sp = gort_init_stack(g.sa.top, sibling_a, &g);
    g.b_sp = gort_init_stack(g.sb.top, sibling_b, &g);
    g.expect_main = HERE_SAVED_SP();
    unsigned long bad = 0;
    for (uintptr_t r = 0; r < SIBLING_ROUNDS; r++) {
        transfer_t t = gort_switch(g.a_sp, 3 * r + 1);
        if (t.arg != 3 * r + 3) bad++;
        if (t.from == NULL || !on_stack(&g.sb, t.from)) bad++;
        if (t.from == NULL) break;
        g.b_sp = t.from; // B came back: B is resumable there
    }
    transfer_t ta = gort_switch(g.a_sp, SIBLING_STOP);
    transfer_t tb = gort_switch(g.b_sp, SIBLING_STOP);
    CHECK(ta.arg == 0xaaaa && ta.from == NULL, "A's exit (%#lx, %p)", (unsigned long)ta.arg,
          ta.from);
    CHECK(tb.arg == 0xbbbb && tb.from == NULL, "B's exit (%#lx, %p)", (unsigned long)tb.arg,
          tb.from);
    CHECK(bad == 0, "main got %lu bad transfers", bad);
    CHECK(g.a_bad == 0 && g.b_bad == 0, "bad transfers: A %lu, B %lu", g.a_bad, g.b_bad);
    CHECK(g.a_rounds == SIBLING_ROUNDS && g.b_rounds == SIBLING_ROUNDS, "rounds: A %lu, B %lu",
          g.a_rounds, g.b_rounds);
    stack_free(&g.sa);
    stack_free(&g.sb);
    char name[96];
    snprintf(name, sizeof name, "sibling switch main -> A -> B -> main (%u rounds)",
             SIBLING_ROUNDS);
    report(name, f0);
}

// ---------------------------------------------------------------------------
// 6. gort_exit delivers from == NULL: straight from a fresh context, and after
//    some switches; and the stack can then be reused for a fresh context.

static __attribute__((noreturn)) void exit_entry(uintptr_t arg, void *from, void *ctx) {
    (void)ctx;
    for (uintptr_t n = arg; n > 0; n--) {
        transfer_t t = gort_switch(from, n);
        from = t.from;
    }
    gort_exit(from, 0xe417);
}

static void test_exit(void) {
    unsigned long f0 = failures;
    struct stack s = stack_new();
    for (uintptr_t switches = 0; switches < 4; switches++) {
        // Same stack memory every time: reuse after exit.
        void *co = gort_init_stack(s.top, exit_entry, NULL);
        transfer_t t = gort_switch(co, switches);
        for (uintptr_t n = switches; n > 0; n--) {
            CHECK(t.arg == n && t.from != NULL, "yield %lu: (%#lx, %p)", (unsigned long)n,
                  (unsigned long)t.arg, t.from);
            if (t.from == NULL) break;
            t = gort_switch(t.from, 0);
        }
        CHECK(t.arg == 0xe417, "exit word %#lx", (unsigned long)t.arg);
        CHECK(t.from == NULL, "exit from %p, want NULL", t.from);
    }
    stack_free(&s);
    report("gort_exit delivers from == NULL; stack reusable", f0);
}

// ---------------------------------------------------------------------------

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_init_frame();
    test_entry_args();
    test_pingpong();
    test_registers();
    test_siblings();
    test_exit();
    if (failures == 0) {
        printf("aarch64 harness: PASS (%lu checks)\n", checks);
        return 0;
    }
    printf("aarch64 harness: FAIL (%lu of %lu checks failed)\n", failures, checks);
    return 1;
}
