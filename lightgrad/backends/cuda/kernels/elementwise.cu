// elementwise.cu: unary, binary and ternary ops over strided, broadcast views.
//
// One thread per output element (a grid-stride loop covers any size). Inputs are read
// through their lg_layout, so views and broadcasts need no copies; the NumPy twins are the
// ufuncs in backends/cpu.py. Half types are stored as 16 bits and computed in float.
#include "prelude.cuh"

// Op codes; Python reads the names from here (U_<name> is base.UNARY_OPS' <name>).
enum UnaryOp {
    U_neg, U_abs, U_exp, U_log, U_sqrt, U_rsqrt, U_sin, U_cos, U_tanh, U_sigmoid, U_relu,
    U_gelu, U_gelu_tanh, U_silu, U_softplus, U_erf, U_reciprocal, U_sign, U_floor, U_ceil,
    U_round, U_logical_not
};

enum BinaryOp {
    B_add, B_sub, B_mul, B_div, B_pow, B_maximum, B_minimum, B_eq, B_ne, B_lt, B_le, B_gt,
    B_ge, B_logical_and, B_logical_or, B_logical_xor
};

template <class C>
__device__ __forceinline__ C sigmoid(C x) {
    C e = lg_exp(-lg_abs(x));  // never overflows
    return x >= C(0) ? C(1) / (C(1) + e) : e / (C(1) + e);
}

// Floating-point unary math (C is float or double).
template <class C>
__device__ C unary_float(int op, C x) {
    switch (op) {
        case U_neg: return -x;
        case U_abs: return lg_abs(x);
        case U_exp: return lg_exp(x);
        case U_log: return lg_log(x);
        case U_sqrt: return lg_sqrt(x);
        case U_rsqrt: return C(1) / lg_sqrt(x);
        case U_sin: return lg_sin(x);
        case U_cos: return lg_cos(x);
        case U_tanh: return lg_tanh(x);
        case U_sigmoid: return sigmoid(x);
        case U_relu: return x > C(0) ? x : (x != x ? x : C(0));
        case U_gelu: return C(0.5) * x * (C(1) + lg_erf(x * C(0.70710678118654752440)));
        case U_gelu_tanh: {
            C inner = C(0.79788456080286535588) * (x + C(0.044715) * x * x * x);
            return C(0.5) * x * (C(1) + lg_tanh(inner));
        }
        case U_silu: return x * sigmoid(x);
        case U_softplus:  // log(1 + e^x) = max(x, 0) + log1p(e^-|x|)
            return (x > C(0) ? x : C(0)) + lg_log1p(lg_exp(-lg_abs(x)));
        case U_erf: return lg_erf(x);
        case U_reciprocal: return C(1) / x;
        case U_sign: return x > C(0) ? C(1) : (x < C(0) ? C(-1) : x);  // keeps 0, -0 and NaN
        case U_floor: return lg_floor(x);
        case U_ceil: return lg_ceil(x);
        case U_round: return lg_rint(x);
        default: return x;
    }
}

// Integer unary math (the ops that make sense on integers; Python checks the rest).
template <class C>
__device__ C unary_int(int op, C x) {
    switch (op) {
        case U_neg: return -x;
        case U_abs: return x < C(0) ? -x : x;
        case U_sign: return C((x > C(0)) - (x < C(0)));
        case U_relu: return x > C(0) ? x : C(0);
        default: return x;  // floor, ceil, round: integers already are
    }
}

template <class C> __device__ __forceinline__ C unary_math(int op, C x) { return unary_int(op, x); }
template <> __device__ __forceinline__ float unary_math(int op, float x) {
    return unary_float(op, x);
}
template <> __device__ __forceinline__ double unary_math(int op, double x) {
    return unary_float(op, x);
}

template <class T>
__device__ void unary(int op, i64 n, const T* x, lg_layout lx, T* out) {
    typedef typename lg_compute<T>::type C;
    LG_GRID_STRIDE(i, n) out[i] = T(unary_math<C>(op, C(x[lg_offset(lx, i)])));
}

template <class T>
__device__ void logical_not(i64 n, const T* x, lg_layout lx, bool* out) {
    typedef typename lg_compute<T>::type C;
    LG_GRID_STRIDE(i, n) out[i] = !(C(x[lg_offset(lx, i)]) != C(0));
}

template <class C>
__device__ __forceinline__ C int_pow(C base, C exp) {
    C result = 1;
    while (exp > C(0)) {
        if (exp & C(1)) result *= base;
        base *= base;
        exp >>= 1;
    }
    return result;
}

template <class C>
__device__ C binary_math(int op, C a, C b) {
    switch (op) {
        case B_add: return a + b;
        case B_sub: return a - b;
        case B_mul: return a * b;
        case B_div: return a / b;
        case B_maximum: return lg_max(a, b);
        case B_minimum: return lg_min(a, b);
        default: return a;
    }
}

template <class C> __device__ __forceinline__ C power(C a, C b) { return int_pow(a, b); }
template <> __device__ __forceinline__ float power(float a, float b) { return lg_pow(a, b); }
template <> __device__ __forceinline__ double power(double a, double b) { return lg_pow(a, b); }
template <> __device__ __forceinline__ bool power(bool a, bool b) { return a || !b; }

template <class C>
__device__ bool compare(int op, C a, C b) {
    switch (op) {
        case B_eq: return a == b;
        case B_ne: return a != b;
        case B_lt: return a < b;
        case B_le: return a <= b;
        case B_gt: return a > b;
        case B_ge: return a >= b;
        case B_logical_and: return (a != C(0)) && (b != C(0));
        case B_logical_or: return (a != C(0)) || (b != C(0));
        default: return (a != C(0)) != (b != C(0));  // logical_xor
    }
}

// A null pointer means the operand is the number `scalar` (a Python number in the op).
template <class T, class C>
__device__ __forceinline__ C operand(const T* p, const lg_layout& l, double scalar, i64 i) {
    return p ? C(p[lg_offset(l, i)]) : C(scalar);
}

template <class T>
__device__ void binary(int op, i64 n, const T* a, lg_layout la, double sa, const T* b,
                       lg_layout lb, double sb, T* out, lg_layout lo) {
    typedef typename lg_compute<T>::type C;
    LG_GRID_STRIDE(i, n) {
        C x = operand<T, C>(a, la, sa, i), y = operand<T, C>(b, lb, sb, i);
        out[lg_offset(lo, i)] = T(op == B_pow ? power<C>(x, y) : binary_math<C>(op, x, y));
    }
}

template <class T>
__device__ void comparison(int op, i64 n, const T* a, lg_layout la, double sa, const T* b,
                           lg_layout lb, double sb, bool* out) {
    typedef typename lg_compute<T>::type C;
    LG_GRID_STRIDE(i, n) {
        out[i] = compare<C>(op, operand<T, C>(a, la, sa, i), operand<T, C>(b, lb, sb, i));
    }
}

template <class T>
__device__ void where(i64 n, const bool* cond, lg_layout lc, const T* a, lg_layout la,
                      double sa, const T* b, lg_layout lb, double sb, T* out) {
    typedef typename lg_compute<T>::type C;
    LG_GRID_STRIDE(i, n) {
        out[i] = cond[lg_offset(lc, i)] ? T(operand<T, C>(a, la, sa, i))
                                        : T(operand<T, C>(b, lb, sb, i));
    }
}

template <class T>
__device__ void clamp(i64 n, const T* x, lg_layout lx, int has_low, double low, int has_high,
                      double high, T* out) {
    typedef typename lg_compute<T>::type C;
    LG_GRID_STRIDE(i, n) {
        C v = C(x[lg_offset(lx, i)]);
        if (has_low && v < C(low)) v = C(low);
        if (has_high && v > C(high)) v = C(high);
        out[i] = T(v);
    }
}

// d gelu(x)/dx * g = g * (Phi(x) + x * phi(x)), exact GELU.
template <class T>
__device__ void gelu_backward(i64 n, const T* x, lg_layout lx, const T* g, lg_layout lg,
                              T* out) {
    typedef typename lg_compute<T>::type C;
    LG_GRID_STRIDE(i, n) {
        C v = C(x[lg_offset(lx, i)]);
        C cdf = C(0.5) * (C(1) + lg_erf(v * C(0.70710678118654752440)));
        C pdf = lg_exp(C(-0.5) * v * v) * C(0.39894228040143267794);
        out[i] = T(C(g[lg_offset(lg, i)]) * (cdf + v * pdf));
    }
}

#define LG_ALL_TYPES(X) \
    X(f32, float) X(f64, double) X(f16, lg_half) X(bf16, lg_bf16) X(i64, long long) \
    X(i32, int) X(i16, short) X(i8, signed char) X(u8, unsigned char) X(b8, bool)
#define LG_FLOAT_TYPES(X) X(f32, float) X(f64, double) X(f16, lg_half) X(bf16, lg_bf16)

#define UNARY_KERNELS(S, T)                                                                  \
    extern "C" __global__ void unary_##S(int op, i64 n, const T* x, lg_layout lx, T* out) {  \
        unary<T>(op, n, x, lx, out);                                                         \
    }                                                                                        \
    extern "C" __global__ void logical_not_##S(i64 n, const T* x, lg_layout lx, bool* out) { \
        logical_not<T>(n, x, lx, out);                                                       \
    }                                                                                        \
    extern "C" __global__ void binary_##S(int op, i64 n, const T* a, lg_layout la,           \
                                          double sa, const T* b, lg_layout lb, double sb,    \
                                          T* out, lg_layout lo) {                            \
        binary<T>(op, n, a, la, sa, b, lb, sb, out, lo);                                     \
    }                                                                                        \
    extern "C" __global__ void compare_##S(int op, i64 n, const T* a, lg_layout la,          \
                                           double sa, const T* b, lg_layout lb, double sb,   \
                                           bool* out) {                                      \
        comparison<T>(op, n, a, la, sa, b, lb, sb, out);                                     \
    }                                                                                        \
    extern "C" __global__ void where_##S(i64 n, const bool* c, lg_layout lc, const T* a,     \
                                         lg_layout la, double sa, const T* b, lg_layout lb,  \
                                         double sb, T* out) {                                \
        where<T>(n, c, lc, a, la, sa, b, lb, sb, out);                                       \
    }                                                                                        \
    extern "C" __global__ void clamp_##S(i64 n, const T* x, lg_layout lx, int has_low,       \
                                         double low, int has_high, double high, T* out) {    \
        clamp<T>(n, x, lx, has_low, low, has_high, high, out);                               \
    }
LG_ALL_TYPES(UNARY_KERNELS)

#define GELU_BACKWARD(S, T)                                                                 \
    extern "C" __global__ void gelu_backward_##S(i64 n, const T* x, lg_layout lx,          \
                                                 const T* g, lg_layout lg, T* out) {        \
        gelu_backward<T>(n, x, lx, g, lg, out);                                             \
    }
LG_FLOAT_TYPES(GELU_BACKWARD)
