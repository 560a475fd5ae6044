// copy.cu: moving bytes between views, filling, and converting dtypes.
//
// copy_<k> moves k-byte elements from one strided view to another (contiguous() of a
// permuted view, assigning into a slice); fill_<k> writes one bit pattern everywhere;
// cast_<from> converts to any dtype (NumPy's astype with casting="unsafe").
#include "prelude.cuh"

// Output dtype codes of cast_<from>; Python reads the names from here.
enum DType { D_f32, D_f64, D_f16, D_bf16, D_i64, D_i32, D_i16, D_i8, D_u8, D_b8 };

#define COPY_KERNELS(K, T)                                                                  \
    extern "C" __global__ void copy_##K(i64 n, const T* src, lg_layout ls, T* dst,          \
                                        lg_layout ld) {                                     \
        LG_GRID_STRIDE(i, n) dst[lg_offset(ld, i)] = src[lg_offset(ls, i)];                 \
    }                                                                                       \
    extern "C" __global__ void fill_##K(i64 n, unsigned long long bits, T* dst,             \
                                        lg_layout ld) {                                     \
        LG_GRID_STRIDE(i, n) dst[lg_offset(ld, i)] = (T)bits;                               \
    }
COPY_KERNELS(1, unsigned char)
COPY_KERNELS(2, unsigned short)
COPY_KERNELS(4, unsigned int)
COPY_KERNELS(8, unsigned long long)

// Write v (read as the wide type W: double for floats, long long for integers) as `to`.
template <class W>
__device__ __forceinline__ void store_as(int to, void* out, i64 o, W v) {
    switch (to) {
        case D_f32: static_cast<float*>(out)[o] = float(v); break;
        case D_f64: static_cast<double*>(out)[o] = double(v); break;
        case D_f16: static_cast<lg_half*>(out)[o] = lg_half(float(v)); break;
        case D_bf16: static_cast<lg_bf16*>(out)[o] = lg_bf16(float(v)); break;
        case D_i64: static_cast<long long*>(out)[o] = (long long)(v); break;
        case D_i32: static_cast<int*>(out)[o] = int((long long)(v)); break;
        case D_i16: static_cast<short*>(out)[o] = short((long long)(v)); break;
        case D_i8: static_cast<signed char*>(out)[o] = (signed char)((long long)(v)); break;
        case D_u8: static_cast<unsigned char*>(out)[o] = (unsigned char)((long long)(v)); break;
        default: static_cast<bool*>(out)[o] = v != W(0); break;
    }
}

#define CAST_KERNEL(S, T, W)                                                                \
    extern "C" __global__ void cast_##S(i64 n, const T* x, lg_layout lx, int to, void* out, \
                                        lg_layout lo) {                                     \
        LG_GRID_STRIDE(i, n) store_as<W>(to, out, lg_offset(lo, i), (W)x[lg_offset(lx, i)]); \
    }
CAST_KERNEL(f32, float, double)
CAST_KERNEL(f64, double, double)
CAST_KERNEL(f16, lg_half, double)
CAST_KERNEL(bf16, lg_bf16, double)
CAST_KERNEL(i64, long long, long long)
CAST_KERNEL(i32, int, long long)
CAST_KERNEL(i16, short, long long)
CAST_KERNEL(i8, signed char, long long)
CAST_KERNEL(u8, unsigned char, long long)
CAST_KERNEL(b8, bool, long long)
