using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace DitCache.Tensors;

/// <summary>
/// 8×8 float transposes through AVX registers (the unpack/shuffle/permute sequence), about a third of the
/// instructions of element-wise copies and no strided stores. Used where a kernel packs a transposed operand: Kᵀ in
/// attention and the Wᵀ panels of <see cref="ManagedGemm"/> (GemmPacking).
/// </summary>
internal static unsafe class BlockTranspose
{
    /// <summary><c>dst[r·ldd + i] = src[i·lds + r]</c> for i, r &lt; 8 (needs AVX).</summary>
    public static void Transpose8x8(float* src, nint lds, float* dst, nint ldd)
    {
        Debug.Assert(Avx.IsSupported, "callers check Avx.IsSupported");
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + lds);
        Vector256<float> r2 = Avx.LoadVector256(src + (2 * lds)), r3 = Avx.LoadVector256(src + (3 * lds));
        Vector256<float> r4 = Avx.LoadVector256(src + (4 * lds)), r5 = Avx.LoadVector256(src + (5 * lds));
        Vector256<float> r6 = Avx.LoadVector256(src + (6 * lds)), r7 = Avx.LoadVector256(src + (7 * lds));
        Vector256<float> t0 = Avx.UnpackLow(r0, r1), t1 = Avx.UnpackHigh(r0, r1);
        Vector256<float> t2 = Avx.UnpackLow(r2, r3), t3 = Avx.UnpackHigh(r2, r3);
        Vector256<float> t4 = Avx.UnpackLow(r4, r5), t5 = Avx.UnpackHigh(r4, r5);
        Vector256<float> t6 = Avx.UnpackLow(r6, r7), t7 = Avx.UnpackHigh(r6, r7);
        Vector256<float> u0 = Avx.Shuffle(t0, t2, 0x44), u1 = Avx.Shuffle(t0, t2, 0xEE);
        Vector256<float> u2 = Avx.Shuffle(t1, t3, 0x44), u3 = Avx.Shuffle(t1, t3, 0xEE);
        Vector256<float> u4 = Avx.Shuffle(t4, t6, 0x44), u5 = Avx.Shuffle(t4, t6, 0xEE);
        Vector256<float> u6 = Avx.Shuffle(t5, t7, 0x44), u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + (2 * ldd), Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + (3 * ldd), Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + (4 * ldd), Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + (5 * ldd), Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + (6 * ldd), Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + (7 * ldd), Avx.Permute2x128(u3, u7, 0x31));
    }
}
