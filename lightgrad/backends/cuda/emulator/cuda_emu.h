// The CUDA emulator: what a .cu kernel file needs from CUDA, for the host C++ compiler.
//
// Every thread of a block that synchronises is a real thread (an OS thread from a pool kept
// between launches), so a kernel that forgets a barrier races here as it would on a GPU, and
// the thread sanitizer can see it. The blocks of a grid run one after another.
//
// Who runs what. A few "runner" threads (as many as the machine has cores, at most 4) take
// the threads of the current block, highest index first, and run each to its end. A thread
// that has to wait (at __syncthreads or a warp intrinsic) keeps its OS thread while it
// waits, and a fresh runner carries on with the block's remaining threads: a block whose
// threads synchronise ends up with one OS thread per thread, while a block whose threads
// never wait costs no thread switches at all. LIGHTGRAD_EMULATOR_THREADS=dedicated gives
// every thread of the block its own OS thread from the start (the default under the thread
// sanitizer, which can only tell threads apart when they run on different OS threads); a
// number sets how many runners (1: a block's threads run one at a time until one waits).
//
// Shared memory: `__shared__` variables are plain static storage, placed in one linker
// section that is filled with a NaN pattern (all bits set) before every block, so a read of
// shared memory nobody wrote shows up as NaN (or -1 in integers). Dynamic shared memory
// (`extern __shared__`, rewritten by runtime.py) is one buffer per launch, filled the same
// way. One block runs at a time, so one copy is enough.
//
// Waiting: __syncthreads is a counter and a generation word. A warp intrinsic whose mask is
// the whole warp is point to point: a lane posts its value and waits only for the lane it
// reads (see Warp); other masks meet. Waiting threads sleep on a futex (Linux), waking now
// and then to notice failures. Since threads start highest first, the lanes that the usual
// __shfl_down_sync reduction reads have posted already: it costs no waits.
//
// Errors a GPU would hide or hang on are reported instead: __syncthreads reached by some
// threads of a block while others have returned, warp intrinsics whose mask leaves out the
// calling lane, names lanes that do not exist (a partial warp) or a lane that returned,
// shuffles reading a lane outside the mask, lanes of a warp disagreeing on the mask, C++
// exceptions, and kernels that wait forever (a thread waiting longer than
// LIGHTGRAD_EMULATOR_TIMEOUT seconds, default 60, read at each launch; threads stuck in the
// kernel's own code are then abandoned). The launch returns the message; Python raises it.
#pragma once
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <sched.h>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define LG_EMULATOR 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __shared__ static __attribute__((section("lg_shared")))
#define __constant__ static

#if defined(__SANITIZE_THREAD__)
#define LG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LG_TSAN 1
#endif
#endif

struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) double2 { double x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

static thread_local uint3 threadIdx;
static thread_local uint3 blockIdx;
static dim3 blockDim;
static dim3 gridDim;
static const int warpSize = 32;

extern "C" char __start_lg_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_lg_shared[] __attribute__((weak, visibility("hidden")));

namespace lg {

// --- sleeping on a 32-bit word until it changes

#if defined(__linux__)
inline void futex_wait(std::atomic<uint32_t>& word, uint32_t seen, long nanoseconds) {
    timespec limit{nanoseconds / 1000000000L, nanoseconds % 1000000000L};
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAIT_PRIVATE, seen,
            nanoseconds >= 0 ? &limit : nullptr, nullptr, 0);
}
inline void futex_wake(std::atomic<uint32_t>& word) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX,
            nullptr, nullptr, 0);
}
#else  // no futex: poll
inline void futex_wait(std::atomic<uint32_t>&, uint32_t, long) {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
}
inline void futex_wake(std::atomic<uint32_t>&) {}
#endif

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

struct Abort {};  // unwinds a thread once its launch has failed

constexpr int kSync = 1, kExit = 2;     // what a thread arrives at a block barrier for
constexpr int kOwn = -1, kBallot = -2;  // what a lane reads at a warp meeting (or a lane)

// A warp's exchange point for the warp intrinsics.
//
// Intrinsics whose mask names every lane of the warp (the usual full-warp shuffle or ballot)
// go point to point: lane l's k-th such call in a block posts its value in ring[l][k % kRing]
// and then waits only for the lanes it reads (a shuffle reads one, a ballot all) to have
// posted their k-th. Every lane must make the same sequence of full-warp calls, so the k-th
// calls of all lanes are the same call. A lane posts its k-th value only once every lane
// has read the value that slot held before.
//
// Other masks meet: one meeting is open at a time, `state` holding its mask (high half)
// and the lanes arrived so far (low half; 0: none open). Lanes calling with another mask
// that the open meeting does not expect wait until it closes. The lane that completes a
// meeting works out every lane's result and bumps their tickets.
constexpr int kRing = 32;

struct Warp {
    // full-warp calls: keys are (block << 32) | k, k counting a lane's calls in the block
    std::atomic<uint64_t> posted[32] = {};  // the last call each lane has posted a value for
    std::atomic<uint64_t> taken[32] = {};   // the last call each lane has read values for
    uint64_t ring[32][kRing];
    std::atomic<uint32_t> word[32] = {};    // bumped (and woken) when a lane posts, reads,
    std::atomic<int> sleepers[32] = {};     // or leaves its block while others sleep on it
    // meetings (other masks)
    std::atomic<uint64_t> state{0};
    std::atomic<uint32_t> epoch{0};  // bumped when a meeting closes (or the launch fails)
    int src[32];                     // what each arrived lane reads: a lane, kOwn, kBallot
    uint64_t value[32];              // what each arrived lane brought
    uint64_t result[32];             // what each lane of the last meeting gets
    std::atomic<uint32_t> ticket[32] = {};  // meetings each lane has had its result from
};

struct Pool;

// The state of one launch. If a launch has to abandon threads stuck in the kernel's own
// code, they keep it (and it is never freed).
struct Launch {
    int nthreads = 0;
    long nblocks = 0, total = 0;  // total: nblocks * nthreads
    dim3 grid, block;
    double timeout_s = 60.0;
    int yields = 4;         // sched_yield()s before a thread sleeps at __syncthreads
    int gate_spins = 200;   // pauses before a runner sleeps at the end of a block
    int runners_wanted = 2;  // 0: dedicated (one OS thread per thread of the block)
    bool shared = false;     // the module has __shared__ variables or this launch asks for
                             // dynamic shared memory: refill it between blocks
    const std::function<void()>* body = nullptr;
    Pool* pool = nullptr;

    // Which threads may run: claim mode takes `next`, (block, thread) in linear order;
    // threads below `open_limit` (the end of the current block) may start, and `gate` is
    // bumped when the next block opens.
    std::atomic<long> next{0};
    std::atomic<long> open_limit{0};
    std::atomic<uint32_t> gate{0};
    std::atomic<int> runners{0};  // OS threads running or taking threads (claim mode)
    std::atomic<int> holders{1};  // OS threads working on the launch, +1 for the launcher
    std::atomic<uint32_t> done{0};  // 1 once holders reached 0, 2 once that was announced

    // The open barrier phase in one word: arrivals (bits 0-15), the kinds seen (bits 16-17)
    // and the block (bits 18-63); the generation counts completed __syncthreads phases.
    std::atomic<uint64_t> barrier{0};
    std::atomic<uint32_t> barrier_gen{0};
    std::atomic<int> first_of_kind[3] = {-1, -1, -1};  // a thread of each kind (messages)
    std::unique_ptr<std::atomic<long>[]> pos;  // per thread: blocks it has finished
    std::unique_ptr<Warp[]> warps;
    int nwarps = 0;
    std::vector<unsigned char> dynamic_shared;

    std::atomic<bool> failed{false};
    std::mutex error_m;
    std::string error;
};

static thread_local Launch* t_launch = nullptr;
static thread_local int t_tid = 0;     // linear thread index in the block
static thread_local long t_block = 0;  // linear index of the block being run
static thread_local uint32_t t_warp_calls = 0;  // full-warp intrinsics called in the block

inline std::string where() {
    char buf[160];
    std::snprintf(buf, sizeof buf, "block (%u, %u, %u), thread (%u, %u, %u)", blockIdx.x,
                  blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
    return buf;
}

inline std::string thread_name(const Launch& L, int tid) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "thread (%u, %u, %u)", unsigned(tid % L.block.x),
                  unsigned(tid / L.block.x % L.block.y),
                  unsigned(tid / (L.block.x * L.block.y)));
    return buf;
}

// Record the launch's first error and wake every waiting thread (they raise Abort).
inline void set_failed(Launch& L, const std::string& msg) {
    {
        std::lock_guard<std::mutex> lk(L.error_m);
        if (L.failed.load()) return;
        L.error = msg;
        L.failed.store(true);
    }
    for (std::atomic<uint32_t>* word : {&L.barrier_gen, &L.gate}) {
        word->fetch_add(1, std::memory_order_release);
        futex_wake(*word);
    }
    for (int w = 0; w < L.nwarps; ++w) {
        Warp& W = L.warps[w];
        W.epoch.fetch_add(1, std::memory_order_release);
        futex_wake(W.epoch);
        for (auto& word : W.word) {
            word.fetch_add(1, std::memory_order_release);
            futex_wake(word);
        }
    }
}

[[noreturn]] inline void fail(Launch& L, const std::string& msg) {
    set_failed(L, msg);
    throw Abort{};
}

inline void hand_off(Launch& L, int tid);  // a pool thread starts running the launch (below)

// Wait until ready(): sleep on `word` (whoever makes ready() true bumps it and wakes its
// sleepers), waking now and then to notice a failed launch or a hang. `what` says what the
// thread waits for. A thread of the kernel that waits keeps its OS thread (claim mode: a
// fresh runner takes over the block's remaining threads if the runners fell below what is
// wanted). False if the launch failed.
template <class Ready>
inline bool wait_until(Launch& L, std::atomic<uint32_t>& word, Ready ready, const char* what,
                       bool kernel_thread = true, int yields = 0) {
    if (ready()) return !L.failed.load(std::memory_order_acquire);
    bool claim = kernel_thread && L.runners_wanted > 0;
    if (yields && kernel_thread && (!claim || L.next.load(std::memory_order_relaxed) >=
                                        (t_block + 1) * L.nthreads)) {
        // every thread of the block runs or waits already: let the others run a little
        for (int i = 0; i < yields; ++i) {
            sched_yield();
            if (ready()) return !L.failed.load(std::memory_order_acquire);
        }
    }
    if (claim && L.runners.fetch_sub(1) - 1 < L.runners_wanted &&
        L.next.load(std::memory_order_relaxed) < L.total)
        hand_off(L, -1);
    auto start = std::chrono::steady_clock::now();
    long slice = std::min(100000000L, long(L.timeout_s * 1e9 / 4) + 1);
    for (;;) {
        uint32_t seen = word.load(std::memory_order_acquire);
        if (ready()) break;
        if (L.failed.load(std::memory_order_relaxed)) break;
        futex_wait(word, seen, slice);
        if (ready()) break;
        double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                      start).count();
        if (waited > L.timeout_s) {
            char buf[64];
            std::snprintf(buf, sizeof buf, " waited %.1f s ", waited);
            set_failed(L, "kernel appears hung: " + where() + buf + what + " (raise "
                          "LIGHTGRAD_EMULATOR_TIMEOUT if it is only slow)");
            break;
        }
    }
    if (claim) L.runners.fetch_add(1);
    return !L.failed.load(std::memory_order_acquire);
}

// Bytes of the module's __shared__ variables (the linker brackets their section).
inline size_t static_shared_bytes() {
    char *start = __start_lg_shared, *stop = __stop_lg_shared;
    return start && stop && stop > start ? size_t(stop - start) : 0;
}

inline void fill_shared(Launch& L) {
    if (size_t n = static_shared_bytes()) std::memset(__start_lg_shared, 0xFF, n);
    if (!L.dynamic_shared.empty())
        std::memset(L.dynamic_shared.data(), 0xFF, L.dynamic_shared.size());
}

// --- __syncthreads and the end of a block

constexpr uint64_t kCount = 0xFFFFu;
constexpr int kKindShift = 16, kBlockShift = 18;

[[noreturn]] inline void divergent(Launch& L, int kind) {
    int other = L.first_of_kind[kind == kSync ? kExit : kSync].load();
    std::string them = other >= 0 ? thread_name(L, other) : std::string("other threads");
    const char* advice = " (every thread of a block must reach each __syncthreads: don't "
                         "return early from a kernel that synchronises)";
    if (kind == kSync)
        fail(L, "divergent __syncthreads: " + where() + " reached __syncthreads after " +
                    them + " of its block returned" + advice);
    fail(L, "divergent __syncthreads: " + where() + " returned while " + them +
                " of its block waits at __syncthreads" + advice);
}

// The block's next thread may start: at the end of a block, once all its threads are done.
inline void open_next_block(Launch& L, long b) {
    if (L.shared && b + 1 < L.nblocks) fill_shared(L);
    L.open_limit.store((b + 2) * L.nthreads, std::memory_order_release);
    L.gate.fetch_add(1, std::memory_order_release);
    futex_wake(L.gate);
}

// One barrier phase: every thread of the block arrives, all for __syncthreads (they wait
// for each other) or all at their end (nobody waits; the last opens the next block).
inline void block_arrive(int kind) {
    Launch& L = *t_launch;
    const long b = t_block;
    if (L.failed.load(std::memory_order_relaxed)) throw Abort{};
    uint32_t gen = L.barrier_gen.load(std::memory_order_acquire);
    int none = -1;
    L.first_of_kind[kind].compare_exchange_strong(none, t_tid);
    uint64_t old = L.barrier.load(std::memory_order_relaxed), now;
    do {
        now = (old & kCount) == 0
                  ? (uint64_t(b) << kBlockShift) | (uint64_t(kind) << kKindShift) | 1u
                  : (old | (uint64_t(kind) << kKindShift)) + 1u;
    } while (!L.barrier.compare_exchange_weak(old, now, std::memory_order_acq_rel,
                                              std::memory_order_relaxed));
    if ((old & kCount) != 0 && (old >> kBlockShift) != uint64_t(b))
        fail(L, "emulator error: threads of two blocks met at one barrier (" + where() + ")");
    if (((now >> kKindShift) & 3u) == unsigned(kSync | kExit)) divergent(L, kind);
    if ((now & kCount) == uint64_t(L.nthreads)) {  // the last to arrive
        for (auto& f : L.first_of_kind) f.store(-1, std::memory_order_relaxed);
        L.barrier.store(0, std::memory_order_relaxed);
        if (kind == kExit) {
            open_next_block(L, b);
        } else {
            L.barrier_gen.fetch_add(1, std::memory_order_release);
            futex_wake(L.barrier_gen);
        }
        return;
    }
    if (kind == kSync &&
        !wait_until(L, L.barrier_gen, [&] {
            return L.barrier_gen.load(std::memory_order_acquire) != gen;
        }, "at __syncthreads", true, L.yields))
        throw Abort{};
}

inline unsigned existing_lanes(const Launch& L, int warp) {
    int n = L.nthreads - warp * 32;
    return n >= 32 ? 0xFFFFFFFFu : ((1u << n) - 1u);
}

// The thread has finished block b: a warp intrinsic still waiting for it there is told.
inline void leave_block(long b) {
    Launch& L = *t_launch;
    const int tid = t_tid, lane = tid & 31;
    // (release: whoever sees this lane gone also sees everything it posted before; with the
    // fences in the warp intrinsics, either they see `pos` or this sees their meeting open)
    L.pos[tid].store(b + 1, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    Warp& W = L.warps[tid >> 5];
    if (W.sleepers[lane].load(std::memory_order_relaxed)) {  // they find this lane gone
        W.word[lane].fetch_add(1, std::memory_order_release);
        futex_wake(W.word[lane]);
    }
    uint64_t st = W.state.load(std::memory_order_relaxed);
    unsigned mask = unsigned(st >> 32), arrived = unsigned(st);
    if (arrived && ((mask >> lane) & 1u) && !((arrived >> lane) & 1u)) {
        char buf[200];
        std::snprintf(buf, sizeof buf, "a warp intrinsic with mask 0x%08x waits for lane %d, "
                      "which returned before joining it (", mask, lane);
        fail(L, buf + where() + ")");
    }
}

// --- warp intrinsics

// The lane's full-warp call: post `value`, then read what `src` asks for (see Warp).
inline uint64_t warp_exchange(Launch& L, uint64_t value, int src, const char* what) {
    const int tid = t_tid, lane = tid & 31, w = tid >> 5;
    const long b = t_block;
    Warp& W = L.warps[w];
    const unsigned lanes = existing_lanes(L, w);
    const uint64_t key = (uint64_t(b) << 32) | ++t_warp_calls;
    // Wait until lane l's `counter` reaches `want`; l must not have left the block, nor be
    // waiting for this lane in a meeting of another mask.
    auto wait_lane = [&](std::atomic<uint64_t>& counter, int l, uint64_t want) {
        if (counter.load(std::memory_order_acquire) >= want) return;
        W.sleepers[l].fetch_add(1);
        std::atomic_thread_fence(std::memory_order_seq_cst);
        bool ok = wait_until(L, W.word[l], [&] {
            if (counter.load(std::memory_order_acquire) >= want) return true;
            char buf[200];
            if (L.pos[w * 32 + l].load(std::memory_order_acquire) > b &&
                counter.load(std::memory_order_acquire) < want) {  // gone without it
                std::snprintf(buf, sizeof buf, "%s: lane %d, named in mask 0x%08x, returned "
                              "before joining", what, l, lanes);
                set_failed(L, buf + std::string(" (") + where() + ")");
            }
            uint64_t st = W.state.load(std::memory_order_relaxed);
            if ((unsigned(st) >> l & 1u) && (unsigned(st >> 32) >> lane & 1u)) {
                std::snprintf(buf, sizeof buf, "%s: lanes of warp %d disagree on the mask "
                              "(0x%08x vs 0x%08x)", what, w, lanes, unsigned(st >> 32));
                set_failed(L, buf + std::string(" (") + where() + ")");
            }
            return L.failed.load(std::memory_order_relaxed);
        }, what);
        W.sleepers[l].fetch_sub(1);
        if (!ok) throw Abort{};
    };
    auto notify = [&] {  // this lane's counters moved: wake whoever sleeps on it
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (W.sleepers[lane].load(std::memory_order_relaxed)) {
            W.word[lane].fetch_add(1, std::memory_order_release);
            futex_wake(W.word[lane]);
        }
    };
    const uint32_t k = uint32_t(key);
    if (k > uint32_t(kRing)) {  // every lane has read what the slot held
        for (unsigned m = lanes & ~(1u << lane); m; m &= m - 1)
            wait_lane(W.taken[__builtin_ctz(m)], __builtin_ctz(m), key - kRing);
    }
    W.ring[lane][k % kRing] = value;
    W.posted[lane].store(key, std::memory_order_release);
    notify();
    uint64_t result = value;
    if (src == kBallot) {
        result = 0;
        for (unsigned m = lanes; m; m &= m - 1) {
            int l = __builtin_ctz(m);
            wait_lane(W.posted[l], l, key);
            if (W.ring[l][k % kRing]) result |= 1u << l;
        }
    } else if (src >= 0 && src != lane) {
        wait_lane(W.posted[src], src, key);
        result = W.ring[src][k % kRing];
    }
    W.taken[lane].store(key, std::memory_order_release);
    notify();
    return result;
}

// The lanes of `mask` meet; each gets the value of lane `src` (kOwn: its
// own value; kBallot: the ballot of everyone's value != 0).
inline uint64_t warp_meet(unsigned mask, uint64_t value, int src, const char* what) {
    Launch& L = *t_launch;
    const int tid = t_tid, lane = tid & 31, w = tid >> 5;
    const long b = t_block;
    char buf[300];
    auto error = [&](const char* fmt, auto... args) {
        std::snprintf(buf, sizeof buf, fmt, what, args...);
        fail(L, buf + std::string(" (") + where() + ")");
    };
    if (!((mask >> lane) & 1u))
        error("%s: lane %d calls it with mask 0x%08x, which leaves the calling lane out",
              lane, mask);
    unsigned have = existing_lanes(L, w);
    if (mask & ~have)
        error("%s: mask 0x%08x names lanes that do not exist: the block has %d threads, so "
              "warp %d has only lanes 0x%08x (a partial warp)", mask, L.nthreads, w, have);
    if (src >= 0 && !((mask >> src) & 1u))
        error("%s: lane %d reads lane %d, which is not in mask 0x%08x (an out-of-range lane)",
              lane, src, mask);
    Warp& W = L.warps[w];
    // Lanes of `lanes` that finished this block never come: an error if the meeting this
    // lane waits for (or would open) still lacks them.
    auto check_gone = [&](unsigned lanes, bool joined) {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        for (unsigned m = lanes; m; m &= m - 1) {
            int l = __builtin_ctz(m);
            if (L.pos[w * 32 + l].load(std::memory_order_acquire) <= b) continue;
            uint64_t st = W.state.load(std::memory_order_acquire);
            bool open = (unsigned(st) >> lane & 1u) && !(unsigned(st) >> l & 1u);
            if (!joined || open)
                error("%s: lane %d, named in mask 0x%08x, returned before joining", l, mask);
        }
    };
    if (mask == have) return warp_exchange(L, value, src, what);
    W.value[lane] = value;
    W.src[lane] = src;
    const uint32_t ticket = W.ticket[lane].load(std::memory_order_relaxed);
    const uint64_t me = 1u << lane;
    uint64_t old = W.state.load(std::memory_order_acquire), now;
    for (;;) {
        unsigned open_mask = unsigned(old >> 32), arrived = unsigned(old);
        if (arrived && open_mask != mask) {
            if ((open_mask >> lane) & 1u)
                error("%s: lanes of warp %d disagree on the mask (0x%08x vs 0x%08x)", w,
                      open_mask, mask);
            // another mask's meeting: wait for it to close, then try again
            uint32_t e = W.epoch.load(std::memory_order_acquire);
            if (W.state.load(std::memory_order_acquire) != old) {
                old = W.state.load(std::memory_order_acquire);
                continue;
            }
            check_gone(mask & ~unsigned(me), false);
            if (!wait_until(L, W.epoch, [&] {
                    return W.epoch.load(std::memory_order_acquire) != e;
                }, what))
                throw Abort{};
            old = W.state.load(std::memory_order_acquire);
            continue;
        }
        now = arrived ? old | me : (uint64_t(mask) << 32) | me;
        if (W.state.compare_exchange_weak(old, now, std::memory_order_acq_rel,
                                          std::memory_order_acquire))
            break;
    }
    if (unsigned(now) == mask) {  // the last to arrive closes the meeting
        uint64_t ballot = 0;
        for (unsigned m = mask; m; m &= m - 1) {
            int l = __builtin_ctz(m);
            if (W.value[l]) ballot |= 1u << l;
        }
        for (unsigned m = mask; m; m &= m - 1) {
            int l = __builtin_ctz(m), s = W.src[l];
            W.result[l] = s == kBallot ? ballot : W.value[s == kOwn ? l : s];
        }
        uint64_t mine = W.result[lane];
        W.state.store(0, std::memory_order_release);  // (before any lane can come back)
        for (unsigned m = mask & ~unsigned(me); m; m &= m - 1)
            W.ticket[__builtin_ctz(m)].fetch_add(1, std::memory_order_release);
        W.epoch.fetch_add(1, std::memory_order_release);
        futex_wake(W.epoch);
        return mine;
    }
    check_gone(mask & ~unsigned(now), true);
    if (!wait_until(L, W.epoch, [&] {
            return W.ticket[lane].load(std::memory_order_acquire) != ticket;
        }, what))
        throw Abort{};
    return W.result[lane];
}

template <class T>
inline uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8, "warp intrinsics exchange values of at most 8 bytes");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    return bits;
}

template <class T>
inline T from_bits(uint64_t bits) {
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
}

template <class T>
inline T shuffle_from(unsigned mask, T var, int src, const char* what) {
    return from_bits<T>(warp_meet(mask, to_bits(var), src, what));
}

inline void* dynamic_shared() { return t_launch->dynamic_shared.data(); }

}  // namespace lg

inline void __syncthreads() { lg::block_arrive(lg::kSync); }
inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) {
    lg::warp_meet(mask, 0, lg::kOwn, "__syncwarp");
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
    int lane = lg::t_tid & 31, base = lane & ~(width - 1);
    return lg::shuffle_from(mask, var, base + (src_lane & (width - 1)), "__shfl_sync");
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    int lane = lg::t_tid & 31, in = lane & (width - 1);
    int src = in + int(delta) < width ? lane + int(delta) : lg::kOwn;
    return lg::shuffle_from(mask, var, src, "__shfl_down_sync");
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    int lane = lg::t_tid & 31, in = lane & (width - 1);
    int src = in - int(delta) >= 0 ? lane - int(delta) : lg::kOwn;
    return lg::shuffle_from(mask, var, src, "__shfl_up_sync");
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
    int lane = lg::t_tid & 31, base = lane & ~(width - 1);
    int src = lane ^ lane_mask;
    return lg::shuffle_from(mask, var, src < base + width ? src : lg::kOwn, "__shfl_xor_sync");
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
    return unsigned(lg::warp_meet(mask, pred != 0, lg::kBallot, "__ballot_sync"));
}
inline int __any_sync(unsigned mask, int pred) {
    return lg::warp_meet(mask, pred != 0, lg::kBallot, "__any_sync") != 0;
}
inline int __all_sync(unsigned mask, int pred) {
    return lg::warp_meet(mask, pred != 0, lg::kBallot, "__all_sync") == mask;
}
inline unsigned __activemask() { return lg::existing_lanes(*lg::t_launch, lg::t_tid >> 5); }

// --- atomics (std::atomic_ref: real atomic read-modify-writes between the threads)
template <class T>
inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <class T>
inline T atomicSub(T* p, T v) { return std::atomic_ref<T>(*p).fetch_sub(v); }
template <class T>
inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <class T>
inline T atomicCAS(T* p, T expected, T desired) {
    std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired);
    return expected;
}
template <class T>
inline T atomicMax(T* p, T v) {
    std::atomic_ref<T> a(*p);
    T old = a.load();
    while (old < v && !a.compare_exchange_weak(old, v)) {}
    return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
    std::atomic_ref<T> a(*p);
    T old = a.load();
    while (old > v && !a.compare_exchange_weak(old, v)) {}
    return old;
}
template <class T>
inline T atomicOr(T* p, T v) { return std::atomic_ref<T>(*p).fetch_or(v); }
template <class T>
inline T atomicAnd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_and(v); }

// --- math intrinsics
using std::isinf;
using std::isnan;
using std::isfinite;
using std::signbit;
template <class A, class B>
inline std::common_type_t<A, B> min(A a, B b) { return b < a ? b : a; }
template <class A, class B>
inline std::common_type_t<A, B> max(A a, B b) { return a < b ? b : a; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __tanhf(float x) { return std::tanh(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline int __float2int_rn(float x) { return int(std::nearbyint(x)); }
inline int __float_as_int(float x) { int i; std::memcpy(&i, &x, 4); return i; }
inline float __int_as_float(int i) { float x; std::memcpy(&x, &i, 4); return x; }
inline unsigned __float_as_uint(float x) { unsigned i; std::memcpy(&i, &x, 4); return i; }
inline float __uint_as_float(unsigned i) { float x; std::memcpy(&x, &i, 4); return x; }
inline long long __double_as_longlong(double x) { long long i; std::memcpy(&i, &x, 8); return i; }
inline double __longlong_as_double(long long i) { double x; std::memcpy(&x, &i, 8); return x; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __umulhi(unsigned a, unsigned b) {
    return unsigned((unsigned long long)a * b >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
template <class T>
inline T __ldg(const T* p) { return *p; }

namespace lg {

// Run thread `tid` of block `b` to its end.
inline void run_thread(Launch& L, long b, int tid) {
    if (L.failed.load(std::memory_order_relaxed)) return;
    t_launch = &L;
    t_tid = tid;
    t_block = b;
    t_warp_calls = 0;
    threadIdx = {unsigned(tid % L.block.x), unsigned(tid / L.block.x % L.block.y),
                 unsigned(tid / (L.block.x * L.block.y))};
    blockIdx = {unsigned(b % L.grid.x), unsigned(b / L.grid.x % L.grid.y),
                unsigned(b / (long(L.grid.x) * L.grid.y))};
    try {
        (*L.body)();
        leave_block(b);
        block_arrive(kExit);
    } catch (Abort&) {
    } catch (std::exception& e) {
        set_failed(L, std::string("C++ exception in kernel: ") + e.what() + " (" + where() +
                          ")");
    } catch (...) {
        set_failed(L, "C++ exception of unknown type in kernel (" + where() + ")");
    }
}

// Wait until thread `c` (linear over blocks) may start: its block is open. False if the
// launch failed. Runners meet here at the end of each block: spin first (the thread that
// ends the block is likely running on another core), then sleep.
inline bool wait_for_block(Launch& L, long c) {
    int spins = L.runners_wanted > 0 ? L.gate_spins : 0;
    for (int i = 0; i < spins; ++i) {
        if (L.open_limit.load(std::memory_order_acquire) > c) return true;
        if (L.failed.load(std::memory_order_relaxed)) return false;
        cpu_relax();
    }
    return wait_until(L, L.gate, [&] {
        return L.open_limit.load(std::memory_order_acquire) > c;
    }, "for the threads of the previous block", false);
}

// What a pool thread does for a launch: in claim mode (tid < 0) take threads in order while
// there are not too many runners; in dedicated mode run thread `tid` of every block.
inline void runner(Launch& L, int tid) {
    if (tid >= 0) {
        for (long b = 0; b < L.nblocks; ++b) {
            if (!wait_for_block(L, b * L.nthreads + tid)) return;
            run_thread(L, b, tid);
        }
        return;
    }
    for (;;) {
        if (L.failed.load(std::memory_order_relaxed)) break;
        long c = L.next.load(std::memory_order_relaxed);
        if (c >= L.total) break;
        if (c >= L.open_limit.load(std::memory_order_acquire)) {
            if (!wait_for_block(L, c)) break;
            continue;
        }
        if (!L.next.compare_exchange_weak(c, c + 1, std::memory_order_relaxed)) continue;
        // highest thread first: the lanes a __shfl_down_sync reads have posted already
        run_thread(L, c / L.nthreads, L.nthreads - 1 - int(c % L.nthreads));
        int r = L.runners.load();  // more runners than wanted (after waits): leave
        while (r > L.runners_wanted && !L.runners.compare_exchange_weak(r, r - 1)) {}
        if (r > L.runners_wanted) return;
    }
    L.runners.fetch_sub(1);
}

// Pool threads kept between launches (creating hundreds of threads per launch would cost
// more than most kernels), each sleeping on its own word until handed a launch. Idle ones
// wait on a lock-free stack (a thread that leaves a launch must not queue behind others).
// Small stacks: a GPU thread has little local memory too.
struct Worker {
    std::atomic<uint32_t> word{0};  // bumped to hand the thread a launch
    Launch* job = nullptr;
    int tid = -1;
    Pool* pool = nullptr;
    uint32_t index = 0;              // in Pool::workers
    std::atomic<uint32_t> next{0};   // the idle stack below this one (index + 1; 0: none)
};

struct Pool {
    static constexpr uint32_t kMaxWorkers = 16384;
#if defined(__SANITIZE_ADDRESS__) || defined(LG_TSAN)
    static constexpr size_t kStackBytes = 8u << 20;  // sanitizers' frames are larger
#else
    static constexpr size_t kStackBytes = 512u << 10;
#endif
    std::unique_ptr<Worker*[]> workers{new Worker*[kMaxWorkers]};
    std::atomic<uint32_t> created{0};
    std::mutex create_m;
    std::atomic<uint64_t> idle_top{0};  // (tag << 32) | (index + 1): tagged against ABA

    void push_idle(Worker* w) {
        uint64_t old = idle_top.load(std::memory_order_relaxed), now;
        do {
            w->next.store(uint32_t(old), std::memory_order_relaxed);
            now = (((old >> 32) + 1) << 32) | (w->index + 1);
        } while (!idle_top.compare_exchange_weak(old, now, std::memory_order_release,
                                                 std::memory_order_relaxed));
    }

    Worker* pop_idle() {
        uint64_t old = idle_top.load(std::memory_order_acquire), now;
        Worker* w;
        do {
            if (uint32_t(old) == 0) return nullptr;
            w = workers[uint32_t(old) - 1];
            now = (((old >> 32) + 1) << 32) | w->next.load(std::memory_order_relaxed);
        } while (!idle_top.compare_exchange_weak(old, now, std::memory_order_acquire,
                                                 std::memory_order_acquire));
        return w;
    }

    static void* entry(void* p) {
        Worker* w = static_cast<Worker*>(p);
        uint32_t seen = 0;
        for (;;) {
            uint32_t now;
            while ((now = w->word.load(std::memory_order_acquire)) == seen)
                futex_wait(w->word, seen, -1);
            seen = now;
            Launch* L = w->job;
            runner(*L, w->tid);
            w->pool->push_idle(w);
            if (L->holders.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                L->done.store(1, std::memory_order_release);
                futex_wake(L->done);
                L->done.store(2, std::memory_order_release);
            }
        }
        return nullptr;
    }

    Worker* take() {  // an idle worker, or a new one
        if (Worker* w = pop_idle()) return w;
        std::lock_guard<std::mutex> lk(create_m);
        uint32_t n = created.load();
        if (n == kMaxWorkers)
            throw std::runtime_error("the emulator ran out of threads (" +
                                     std::to_string(n) + ")");
        Worker* w = new Worker;
        w->pool = this;
        w->index = n;
        workers[n] = w;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, kStackBytes);
        pthread_t th;
        int err = pthread_create(&th, &attr, entry, w);
        pthread_attr_destroy(&attr);
        if (err != 0) {
            delete w;
            throw std::runtime_error("the emulator could not start a thread (" +
                                     std::to_string(n) + " running)");
        }
        pthread_detach(th);
        created.store(n + 1);
        return w;
    }
};

// Pool thread `w` starts working on the launch: a runner (claim mode, tid < 0) or the OS
// thread of thread `tid` (dedicated mode).
inline void start(Launch& L, Worker* w, int tid) {
    L.holders.fetch_add(1, std::memory_order_relaxed);
    if (tid < 0) L.runners.fetch_add(1);
    w->job = &L;
    w->tid = tid;
    w->word.fetch_add(1, std::memory_order_release);
    futex_wake(w->word);
}

inline void hand_off(Launch& L, int tid) {
    Worker* w;
    try {
        w = L.pool->take();
    } catch (std::exception& e) {
        set_failed(L, e.what());
        return;
    }
    start(L, w, tid);
}

static Pool* g_pool = nullptr;  // never destroyed: its threads live until the process ends

inline int runners_wanted() {
    const char* v = std::getenv("LIGHTGRAD_EMULATOR_THREADS");
    if (v && *v) {
        if (!std::strcmp(v, "dedicated") || !std::strcmp(v, "all")) return 0;
        return std::max(1, std::atoi(v));
    }
#ifdef LG_TSAN
    return 0;
#else
    return int(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
#endif
}

// Run `body` as the kernel over grid x block; 0 on success, else 1 and a message in err.
inline int launch(dim3 grid, dim3 block, size_t shared_bytes, char* err, int errlen,
                  const std::function<void()>& body) {
    static std::mutex one_launch_at_a_time;
    std::lock_guard<std::mutex> guard(one_launch_at_a_time);
    auto L = std::make_unique<Launch>();
    try {
        if (const char* t = std::getenv("LIGHTGRAD_EMULATOR_TIMEOUT")) {
            L->timeout_s = std::atof(t);
            if (!(L->timeout_s > 0)) L->timeout_s = 60.0;
        }
        L->runners_wanted = runners_wanted();
        L->nthreads = int(block.x * block.y * block.z);
        L->nblocks = long(grid.x) * grid.y * grid.z;
        L->total = L->nblocks * L->nthreads;
        L->grid = grid;
        L->block = block;
        L->body = &body;
        L->shared = static_shared_bytes() > 0 || shared_bytes > 0;
        L->open_limit.store(L->nthreads);
        L->pos.reset(new std::atomic<long>[L->nthreads]);
        for (int i = 0; i < L->nthreads; ++i) L->pos[i].store(0, std::memory_order_relaxed);
        L->nwarps = (L->nthreads + 31) / 32;
        L->warps.reset(new Warp[L->nwarps]);
        L->dynamic_shared.assign(shared_bytes, 0xFF);
        gridDim = grid;
        blockDim = block;
        fill_shared(*L);
        if (!g_pool) g_pool = new Pool;
        L->pool = g_pool;
    } catch (std::exception& e) {
        std::snprintf(err, size_t(errlen), "%s", e.what());
        return 1;
    }
    if (L->runners_wanted == 0) {
        // Every thread gets its own OS thread: take them all before starting any (else one
        // that has finished could come back from the idle stack as a later thread, and the
        // thread sanitizer would see one thread where the kernel has two).
        std::vector<Worker*> workers;
        try {
            for (int t = 0; t < L->nthreads; ++t) workers.push_back(g_pool->take());
        } catch (std::exception& e) {
            for (Worker* w : workers) g_pool->push_idle(w);
            std::snprintf(err, size_t(errlen), "%s", e.what());
            return 1;
        }
        for (int t = L->nthreads - 1; t >= 0; --t) start(*L, workers[t], t);
    } else {
        long n = std::min<long>(L->runners_wanted, L->total);
        for (long i = 0; i < n; ++i) hand_off(*L, -1);
    }
    if (L->holders.fetch_sub(1, std::memory_order_acq_rel) == 1) L->done.store(2);
    // Wait for the pool threads. Once the launch has failed, threads still busy in the
    // kernel's own code (spinning on a flag, say) get a grace period, then are abandoned
    // with the pool.
    auto failed_at = std::chrono::steady_clock::time_point{};
    double grace = std::min(10.0, std::max(1.0, L->timeout_s));
    uint32_t d;
    while ((d = L->done.load(std::memory_order_acquire)) != 2) {
        if (d == 1) {
            std::this_thread::yield();
            continue;
        }
        futex_wait(L->done, 0, 50000000L);
        if (!L->failed.load()) continue;
        auto now = std::chrono::steady_clock::now();
        if (failed_at == std::chrono::steady_clock::time_point{}) failed_at = now;
        if (std::chrono::duration<double>(now - failed_at).count() > grace &&
            L->done.load(std::memory_order_acquire) == 0) {
            std::lock_guard<std::mutex> lk(L->error_m);
            std::snprintf(err, size_t(errlen), "%s (%d threads still running the kernel were "
                          "abandoned: restart the process before trusting it again)",
                          L->error.c_str(), L->holders.load());
            g_pool = nullptr;  // the stuck threads keep the old pool and launch state
            L.release();
            return 1;
        }
    }
    if (L->failed.load()) {
        std::lock_guard<std::mutex> lk(L->error_m);
        std::snprintf(err, size_t(errlen), "%s", L->error.c_str());
        return 1;
    }
    return 0;
}

template <class... P, size_t... I>
inline void call_with(void (*f)(P...), void** args, std::index_sequence<I...>) {
    f(*static_cast<std::remove_cv_t<std::remove_reference_t<P>>*>(args[I])...);
}

template <class... P>
inline void call(void (*f)(P...), void** args) {
    call_with(f, args, std::index_sequence_for<P...>{});
}

}  // namespace lg
