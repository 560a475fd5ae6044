// scan.cu: Mamba's selective scan, forward and backward (NumPy twin: backends/cpu_scan.py,
// whose formulas these kernels follow). For a channel c = (batch b, dim i) and state s:
//
//     x[t] = exp(delta[t] * A[s]) * x[t-1] + delta[t] * u[t] * B[s, t]      (x[-1] = 0)
//     y[t] = (sum_s x[t] * C[s, t] + D * u[t]) * silu(z[t])
//
// with delta = softplus(delta + delta_bias) when asked. The recurrence is sequential in t
// and independent across channels and states, so a channel is walked in time order by a
// group of P lanes of one warp (P a power of two >= N, at most 32): lane j of the group
// keeps states j, j + P, ... (at most SCAN_MAX_K of them) in registers. Sums over the
// states are shuffle reductions inside the group, which needs no shared memory and no
// __syncthreads. Blocks are (32, warps); channels beyond the grid loop.
//
// Backward recomputes the states instead of reading saved ones. Pass 1 runs the recurrence
// forwards and writes the state at the start of every chunk of SCAN_CHUNK positions to a
// workspace (and, with z, the gate's gradient, which needs the output). Pass 2 takes the
// chunks from the last: it recomputes the chunk's states into registers from its
// checkpoint, then runs the adjoint h[t] = dL/dx[t] backwards in time:
//
//     h[t] = dy[t] * C[t] + exp(delta[t+1] * A) * h[t+1]
//
// and every gradient follows from h, x and the inputs at t. dA and dD are summed per
// channel (the caller adds the batch items); dB and dC are sums over the channels of a
// group, added with atomicAdd into float (double for float64) buffers set to zero.
//
// Every buffer is contiguous (the caller copies views): u, delta, z and the gradients
// (b, d, L); B and C (b, G, N, L); A (d, N), D and delta_bias (d,) in the compute type A.
// Half types are stored in 16 bits and computed in float.
#include "prelude.cuh"

#define SCAN_MAX_K 2   // states per lane: N <= 32 * SCAN_MAX_K (launch.py's SCAN_MAX_STATE)
#define SCAN_CHUNK 8   // positions whose states backward keeps in registers at once

// The inputs, as one argument for the device functions.
template <class T, class A>
struct ScanInputs {
    i64 channels, dim, L, N, G;   // channels = batch * dim; G groups of B and C
    int P;                        // lanes per channel
    const T* u;                   // (batch, dim, L)
    const T* delta;
    const A* A_;                  // (dim, N)
    const T* B;                   // (batch, G, N, L)
    const T* C;
    const A* D;                   // (dim,) or null
    const T* z;                   // (batch, dim, L) or null
    const A* bias;                // (dim,) or null
    bool softplus;
};

// softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)), as cpu_scan's logaddexp
template <class A>
__device__ __forceinline__ A scan_softplus(A x) {
    return lg_max(x, A(0)) + lg_log1p(lg_exp(-lg_abs(x)));
}

template <class A>
__device__ __forceinline__ A scan_sigmoid(A x) { return A(1) / (A(1) + lg_exp(-x)); }

// Sum of v over the P lanes of a group (P a power of two dividing 32), to each of them.
template <class A>
__device__ __forceinline__ A group_sum(A v, int P) {
    for (int offset = P >> 1; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Where one lane stands: its channel (batch b, dim i), its place j in the group and the
// rows of B and C its channel reads. `active` is false for lanes past the last channel;
// they still take part in the shuffles, with zeros.
template <class T, class A>
struct ScanLane {
    i64 c, i, bc_row;
    int j;
    bool active;

    __device__ ScanLane(const ScanInputs<T, A>& in, i64 first) {
        int lane = threadIdx.x & 31;
        c = first + lane / in.P;
        j = lane % in.P;
        active = c < in.channels;
        i64 b = active ? c / in.dim : 0;
        i = active ? c % in.dim : 0;
        bc_row = (b * in.G + i / (in.dim / in.G)) * in.N;  // element (s, t): (row + s) * L + t
    }
    __device__ bool has(const ScanInputs<T, A>& in, int k) const {
        return active && j + k * in.P < in.N;
    }
    __device__ i64 state(const ScanInputs<T, A>& in, int k) const { return j + k * in.P; }
};

// The first channel of this warp's group of channels in each round of the grid loop (the
// same for all lanes of a warp, so every lane runs the same rounds).
#define SCAN_CHANNELS(first, in)                                                            \
    for (i64 first = (i64(blockIdx.x) * blockDim.y + threadIdx.y) * (32 / (in).P);           \
         first < (in).channels; first += i64(gridDim.x) * blockDim.y * (32 / (in).P))

// delta at position t of the lane's channel, after bias (and softplus); `raw` gets the value
// softplus saw.
template <class T, class A>
__device__ __forceinline__ A scan_delta(const ScanInputs<T, A>& in, const ScanLane<T, A>& ln,
                                        i64 t, A& raw) {
    raw = A(in.delta[ln.c * in.L + t]);
    if (in.bias) raw += in.bias[ln.i];
    return in.softplus ? scan_softplus(raw) : raw;
}

// One time step of this lane's states: x = exp(dt A) x + dt u B; returns the lane's share
// of y = sum_n x C and sets u (the input, for the D * u term). Inactive lanes give 0.
template <class T, class A>
__device__ __forceinline__ A scan_step(const ScanInputs<T, A>& in, const ScanLane<T, A>& ln,
                                       i64 t, const A* a, A* x, A& u) {
    A part = A(0);
    u = A(0);
    if (!ln.active) return part;
    A raw;
    A dt = scan_delta(in, ln, t, raw);
    u = A(in.u[ln.c * in.L + t]);
    for (int k = 0; k < SCAN_MAX_K; ++k) {
        if (!ln.has(in, k)) continue;
        i64 at = (ln.bc_row + ln.state(in, k)) * in.L + t;
        x[k] = lg_exp(dt * a[k]) * x[k] + dt * u * A(in.B[at]);
        part += x[k] * A(in.C[at]);
    }
    return part;
}

template <class T, class A>
__device__ void scan_forward(const ScanInputs<T, A> in, T* y, T* last) {
    SCAN_CHANNELS(first, in) {
        ScanLane<T, A> ln(in, first);
        A a[SCAN_MAX_K], x[SCAN_MAX_K];
        for (int k = 0; k < SCAN_MAX_K; ++k) {
            a[k] = ln.has(in, k) ? in.A_[ln.i * in.N + ln.state(in, k)] : A(0);
            x[k] = A(0);
        }
        for (i64 t = 0; t < in.L; ++t) {
            A u;
            A out = group_sum(scan_step(in, ln, t, a, x, u), in.P);
            if (ln.active && ln.j == 0) {
                if (in.D) out += in.D[ln.i] * u;
                if (in.z) {
                    A zt = A(in.z[ln.c * in.L + t]);
                    out *= zt * scan_sigmoid(zt);
                }
                y[ln.c * in.L + t] = T(out);
            }
        }
        for (int k = 0; k < SCAN_MAX_K; ++k)
            if (ln.has(in, k)) last[ln.c * in.N + ln.state(in, k)] = T(x[k]);
    }
}

// The gradients: du, dz (b, d, L) in T; ddelta (b, d, L), dA (b, d, N) and dD (b, d) per
// channel, dB and dC (b, G, N, L) summed atomically, all in A. `checkpoints` holds
// channels x chunks x N values of workspace.
template <class T, class A>
struct ScanGrads {
    T* du; A* ddelta; A* dA; A* dB; A* dC; A* dD; T* dz; A* checkpoints;
};

// Pass 1: the state before every chunk, into the checkpoints; with z, dz (which needs the
// output before the gate: the sum over states plus D * u).
template <class T, class A>
__device__ __forceinline__ void scan_checkpoints(const ScanInputs<T, A>& in,
                                                 const ScanLane<T, A>& ln, const T* g,
                                                 const A* a, A* saved, T* dz) {
    A x[SCAN_MAX_K];
    for (int k = 0; k < SCAN_MAX_K; ++k) x[k] = A(0);
    for (i64 t = 0; t < in.L; ++t) {
        for (int k = 0; k < SCAN_MAX_K; ++k)
            if (t % SCAN_CHUNK == 0 && ln.has(in, k))
                saved[(t / SCAN_CHUNK) * in.N + ln.state(in, k)] = x[k];
        A u;
        A part = scan_step(in, ln, t, a, x, u);
        if (!in.z) continue;  // (the same for the whole warp)
        A out = group_sum(part, in.P);
        if (ln.active && ln.j == 0) {
            if (in.D) out += in.D[ln.i] * u;
            i64 at = ln.c * in.L + t;
            A zt = A(in.z[at]), sig = scan_sigmoid(zt);
            dz[at] = T(A(g[at]) * out * sig * (A(1) + zt * (A(1) - sig)));
        }
    }
}

template <class T, class A>
__device__ void scan_backward(const ScanInputs<T, A> in, const T* g, const T* g_last,
                              ScanGrads<T, A> out) {
    i64 chunks = (in.L + SCAN_CHUNK - 1) / SCAN_CHUNK;
    SCAN_CHANNELS(first, in) {
        ScanLane<T, A> ln(in, first);
        A a[SCAN_MAX_K], h_next[SCAN_MAX_K], da[SCAN_MAX_K];
        for (int k = 0; k < SCAN_MAX_K; ++k) {
            bool has = ln.has(in, k);
            a[k] = has ? in.A_[ln.i * in.N + ln.state(in, k)] : A(0);
            // decay[t+1] * h[t+1] arriving at t: at the end, the last state's gradient
            h_next[k] = has && g_last ? A(g_last[ln.c * in.N + ln.state(in, k)]) : A(0);
            da[k] = A(0);
        }
        A* saved = out.checkpoints + (ln.active ? ln.c : 0) * chunks * in.N;
        scan_checkpoints(in, ln, g, a, saved, out.dz);
        A dD = A(0);
        for (i64 chunk = chunks - 1; chunk >= 0; --chunk) {
            i64 start = chunk * SCAN_CHUNK;
            // the chunk's states again, from its checkpoint
            A x0[SCAN_MAX_K], xs[SCAN_CHUNK][SCAN_MAX_K];
            for (int k = 0; k < SCAN_MAX_K; ++k)
                x0[k] = ln.has(in, k) ? saved[chunk * in.N + ln.state(in, k)] : A(0);
#pragma unroll
            for (int p = 0; p < SCAN_CHUNK; ++p) {
                i64 t = start + p;
                A raw, dt = ln.active && t < in.L ? scan_delta(in, ln, t, raw) : A(0);
                A u = ln.active && t < in.L ? A(in.u[ln.c * in.L + t]) : A(0);
#pragma unroll
                for (int k = 0; k < SCAN_MAX_K; ++k) {
                    A prev = p ? xs[p ? p - 1 : 0][k] : x0[k];
                    A b_in = A(0);
                    if (ln.has(in, k) && t < in.L)
                        b_in = A(in.B[(ln.bc_row + ln.state(in, k)) * in.L + t]);
                    xs[p][k] = lg_exp(dt * a[k]) * prev + dt * u * b_in;
                }
            }
            // the adjoint, backwards through the chunk
#pragma unroll
            for (int p = SCAN_CHUNK - 1; p >= 0; --p) {
                i64 t = start + p;
                if (t >= in.L) continue;  // (the same for the whole warp)
                A raw = A(0), dt = A(0), u = A(0), gy = A(0);
                i64 at = ln.c * in.L + t;
                if (ln.active) {
                    dt = scan_delta(in, ln, t, raw);
                    u = A(in.u[at]);
                    gy = A(g[at]);
                    if (in.z) {
                        A zt = A(in.z[at]);
                        gy *= zt * scan_sigmoid(zt);
                    }
                }
                A qa = A(0), hb = A(0);  // this lane's parts of sum_s q * A and sum_s h * B
#pragma unroll
                for (int k = 0; k < SCAN_MAX_K; ++k) {
                    if (!ln.has(in, k)) continue;
                    i64 bc = (ln.bc_row + ln.state(in, k)) * in.L + t;
                    A h = gy * A(in.C[bc]) + h_next[k];
                    A decay = lg_exp(dt * a[k]);
                    A q = h * decay * (p ? xs[p ? p - 1 : 0][k] : x0[k]);  // dL/ddecay * decay
                    da[k] += q * dt;
                    qa += q * a[k];
                    A b_in = A(in.B[bc]);
                    hb += h * b_in;
                    atomicAdd(out.dB + bc, h * dt * u);
                    atomicAdd(out.dC + bc, gy * xs[p][k]);
                    h_next[k] = decay * h;
                }
                qa = group_sum(qa, in.P);
                hb = group_sum(hb, in.P);
                if (ln.active && ln.j == 0) {
                    A ddt = qa + u * hb;
                    if (in.softplus) ddt *= scan_sigmoid(raw);
                    out.ddelta[at] = ddt;
                    A du = dt * hb;
                    if (in.D) du += in.D[ln.i] * gy;
                    out.du[at] = T(du);
                    dD += gy * u;
                }
            }
        }
        for (int k = 0; k < SCAN_MAX_K; ++k)
            if (ln.has(in, k)) out.dA[ln.c * in.N + ln.state(in, k)] = da[k];
        if (ln.active && ln.j == 0) out.dD[ln.c] = dD;
    }
}

#define SCAN_INPUT_PARAMS(T, A)                                                              \
    i64 channels, i64 dim, i64 L, i64 N, i64 G, int P, const T* u, const T* delta,           \
    const A* A_, const T* B, const T* C, const A* D, const T* z, const A* bias, bool softplus
#define SCAN_INPUTS                                                                          \
    {channels, dim, L, N, G, P, u, delta, A_, B, C, D, z, bias, softplus}

#define SCAN_KERNELS(S, T, A)                                                                \
    extern "C" __global__ void selective_scan_forward_##S(SCAN_INPUT_PARAMS(T, A), T* y,    \
                                                          T* last) {                         \
        ScanInputs<T, A> in = SCAN_INPUTS;                                                   \
        scan_forward<T, A>(in, y, last);                                                     \
    }                                                                                        \
    extern "C" __global__ void selective_scan_backward_##S(                                  \
            SCAN_INPUT_PARAMS(T, A), const T* g, const T* g_last, T* du, A* ddelta, A* dA,   \
            A* dB, A* dC, A* dD, T* dz, A* checkpoints) {                                    \
        ScanInputs<T, A> in = SCAN_INPUTS;                                                   \
        ScanGrads<T, A> out = {du, ddelta, dA, dB, dC, dD, dz, checkpoints};                 \
        scan_backward<T, A>(in, g, g_last, out);                                \
    }
LG_NN_FLOAT_TYPES(SCAN_KERNELS)
