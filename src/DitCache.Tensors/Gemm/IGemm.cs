using System;

namespace DitCache.Tensors;

/// <summary>
/// Single-precision matrix multiply, row-major: <c>C = A·op(B)</c>, or <c>C += A·op(B)</c> when
/// <c>accumulate</c>. A is m×k with row stride <c>lda</c>; op(B) is B (k×n, stride <c>ldb</c>) when
/// <c>transB</c> is false, or Bᵀ where B is n×k (stride <c>ldb</c>) when true, which is the layout of a PyTorch
/// <c>Linear.weight</c> [out, in]. C is m×n with stride <c>ldc</c>.
/// </summary>
public interface IGemm
{
    /// <summary>Backend name for reports, e.g. "managed-avx512" or "openblas".</summary>
    string Name { get; }

    /// <summary>Threads this backend uses for one call.</summary>
    int Threads { get; }

    /// <summary>
    /// Declares <paramref name="weight"/> (n×k, row-major: a Linear weight, used with transB = true and ldb = k) a
    /// constant operand of later calls, so that the backend may keep it in its own layout (packed panels, BF16) and
    /// skip converting it on every call. The caller must not change the array afterwards. A backend with nothing to
    /// prepare ignores it (the default).
    /// </summary>
    void Prepare(float[] weight, int n, int k)
    {
    }

    /// <summary>
    /// As <see cref="Prepare"/>, but the caller gives <paramref name="weight"/> up: the backend may rewrite the array
    /// in place into its own layout instead of keeping a second copy, after which the array is only a handle for
    /// <see cref="Multiply"/> calls of this backend with transB, ldb = k and the same n and k. Nothing else may read
    /// it as a row-major weight, and no other backend may be handed it. A backend with nothing to prepare ignores it
    /// (the default), so the array stays as it was.
    /// </summary>
    void PrepareInPlace(float[] weight, int n, int k) => Prepare(weight, n, k);

    /// <summary>Whether this backend multiplies weights stored at <paramref name="precision"/> (float32 always).</summary>
    bool Supports(WeightPrecision precision) => precision == WeightPrecision.Float32;

    /// <summary>
    /// As <see cref="PrepareInPlace(float[], int, int)"/> for a weight stored at <paramref name="precision"/>:
    /// float32, or a <see cref="HalfWeights"/> array of n·k 16-bit values that the backend widens to float32 as it
    /// multiplies. Only a backend that <see cref="Supports"/> the precision takes a 16-bit weight.
    /// </summary>
    /// <exception cref="NotSupportedException">The backend does not support the precision.</exception>
    void PrepareInPlace(float[] weight, int n, int k, WeightPrecision precision)
    {
        if (precision != WeightPrecision.Float32)
        {
            throw new NotSupportedException($"GEMM backend {Name} multiplies float32 weights only; use --gemm managed for --weights {precision.Name()}");
        }

        PrepareInPlace(weight, n, k);
    }

    /// <summary>
    /// Floats that <paramref name="weight"/>, a transB operand of n×k, must hold: n·k, or fewer for a 16-bit weight
    /// this backend prepared (its compact array). Kernels that check a weight's length ask here.
    /// </summary>
    long WeightLength(ReadOnlySpan<float> weight, int n, int k) => (long)n * k;

    /// <summary>Computes <c>C (+)= A·op(B)</c>; see the type remarks for layouts.</summary>
    void Multiply(int m, int n, int k, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, bool transB,
        Span<float> c, int ldc, bool accumulate = false);
}
