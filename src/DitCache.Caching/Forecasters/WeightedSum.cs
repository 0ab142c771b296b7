using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace DitCache.Caching;

/// <summary>
/// The one arithmetic kernel every forecaster shares (docs/methods.md §1): a forecast is a linear combination of
/// stored tensors with scalar weights. The weights are worked out in float64 by the caller; this does one fused pass
/// over the stored tensors, <c>dst[i] = Σ_k w_k · slot_k[i]</c>, skipping zero weights.
/// </summary>
/// <remarks>
/// Every overload computes each element the same way: the terms in order, <c>acc = w_0·t_0</c>, then
/// <c>acc = acc + w_k·t_k</c> (a rounded product, then a rounded sum: no fused multiply-add), with the weights rounded
/// to float32 first. So the Vector512, Vector256 and scalar paths agree bit for bit, and so do the overloads.
/// A cached step is memory-bound (the stored tensors are megabytes and are read once), which is why the result can
/// also be stored into the forecaster's own state in the same pass (<see cref="CombineTerms"/>).
/// </remarks>
public static class WeightedSum
{
    /// <summary>The most weights one <see cref="Combine"/> call takes.</summary>
    public const int MaxSlots = 128;

    /// <summary>
    /// <paramref name="stack"/> holds slots of <paramref name="length"/> floats back to back (slot k at k·length);
    /// writes <c>Σ_k weights[k] · slot_k</c> into <paramref name="destination"/> (length floats). Slots whose weight is
    /// zero are not read. All zero weights give zeros. The destination must not overlap the stack.
    /// </summary>
    /// <exception cref="ArgumentException">The stack has fewer than weights.Length slots, too many weights, or a short destination.</exception>
    public static void Combine(ReadOnlySpan<float> stack, int length, ReadOnlySpan<double> weights, Span<float> destination)
    {
        if (weights.Length > MaxSlots || (long)weights.Length * length > stack.Length || destination.Length < length)
        {
            throw new ArgumentException(
                $"combine of {weights.Length} slots of {length} floats needs a stack of at least {(long)weights.Length * length} and a destination of {length}; got {stack.Length} and {destination.Length}");
        }

        Span<int> offsets = stackalloc int[MaxSlots];
        Span<float> w = stackalloc float[MaxSlots];
        int terms = 0;
        for (int k = 0; k < weights.Length; k++)
        {
            if (weights[k] != 0.0)
            {
                offsets[terms] = k * length;
                w[terms] = (float)weights[k];
                terms++;
            }
        }

        Span<float> dst = destination[..length];
        if (terms == 0)
        {
            dst.Clear();
            return;
        }

        ref float s = ref MemoryMarshal.GetReference(stack);
        ref float d = ref MemoryMarshal.GetReference(dst);
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> acc = Vector512.LoadUnsafe(ref s, (nuint)(offsets[0] + i)) * w[0];
                for (int k = 1; k < terms; k++)
                {
                    acc += Vector512.LoadUnsafe(ref s, (nuint)(offsets[k] + i)) * w[k];
                }

                acc.StoreUnsafe(ref d, (nuint)i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> acc = Vector256.LoadUnsafe(ref s, (nuint)(offsets[0] + i)) * w[0];
                for (int k = 1; k < terms; k++)
                {
                    acc += Vector256.LoadUnsafe(ref s, (nuint)(offsets[k] + i)) * w[k];
                }

                acc.StoreUnsafe(ref d, (nuint)i);
            }
        }

        for (; i < length; i++)
        {
            float acc = Unsafe.Add(ref s, offsets[0] + i) * w[0];
            for (int k = 1; k < terms; k++)
            {
                acc += Unsafe.Add(ref s, offsets[k] + i) * w[k];
            }

            Unsafe.Add(ref d, i) = acc;
        }

        Debug.Assert(i == length);
    }

    /// <summary>
    /// Up to four separately stored terms, in order: <c>dst[i] = w_a·a[i] + w_b·b[i] + w_c·c[i] + w_d·d[i]</c> over
    /// <paramref name="length"/> floats (zero-weight terms are skipped and not read, so they may be empty), written to
    /// <paramref name="destination"/> and, in the same pass, to <paramref name="copy"/> unless it is empty. This is
    /// a cached step's whole forecast: the result goes to the model and into the forecaster's state without a second
    /// pass. <paramref name="copy"/> may be one of the terms (each element is read before it is written);
    /// <paramref name="destination"/> must not overlap any term or the copy. All zero weights give zeros.
    /// </summary>
    /// <exception cref="ArgumentException">A span read or written is shorter than <paramref name="length"/>.</exception>
    public static void CombineTerms(int length, ReadOnlySpan<float> a, double wa, ReadOnlySpan<float> b, double wb,
        ReadOnlySpan<float> c, double wc, ReadOnlySpan<float> d, double wd, Span<float> destination, Span<float> copy)
    {
        if (length < 0 || destination.Length < length || (!copy.IsEmpty && copy.Length < length)
            || (wa != 0 && a.Length < length) || (wb != 0 && b.Length < length) || (wc != 0 && c.Length < length)
            || (wd != 0 && d.Length < length))
        {
            throw new ArgumentException(
                $"combine of {length} floats: terms {a.Length}/{b.Length}/{c.Length}/{d.Length}, destination {destination.Length}, copy {copy.Length} floats");
        }

        // The nonzero terms, compacted in order.
        Span<int> which = stackalloc int[4];
        int count = 0;
        foreach ((int k, double w) in (ReadOnlySpan<(int, double)>)[(0, wa), (1, wb), (2, wc), (3, wd)])
        {
            if (w != 0.0)
            {
                which[count++] = k;
            }
        }

        ref float dst = ref MemoryMarshal.GetReference(destination);
        bool twice = !copy.IsEmpty;
        ref float cp = ref twice ? ref MemoryMarshal.GetReference(copy) : ref dst;
        switch (count)
        {
            case 0:
                destination[..length].Clear();
                if (twice)
                {
                    copy[..length].Clear();
                }

                return;
            case 1:
                Run(length, new One(ref Term(which[0], a, b, c, d), Weight(which[0], wa, wb, wc, wd)), ref dst, ref cp, twice);
                return;
            case 2:
                Run(length, new Two(ref Term(which[0], a, b, c, d), Weight(which[0], wa, wb, wc, wd),
                    ref Term(which[1], a, b, c, d), Weight(which[1], wa, wb, wc, wd)), ref dst, ref cp, twice);
                return;
            case 3:
                Run(length, new Three(ref Term(which[0], a, b, c, d), Weight(which[0], wa, wb, wc, wd),
                    ref Term(which[1], a, b, c, d), Weight(which[1], wa, wb, wc, wd),
                    ref Term(which[2], a, b, c, d), Weight(which[2], wa, wb, wc, wd)), ref dst, ref cp, twice);
                return;
            default:
                Run(length, new Four(ref Term(0, a, b, c, d), (float)wa, ref Term(1, a, b, c, d), (float)wb,
                    ref Term(2, a, b, c, d), (float)wc, ref Term(3, a, b, c, d), (float)wd), ref dst, ref cp, twice);
                return;
        }
    }

    private static ref float Term(int k, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, ReadOnlySpan<float> d) =>
        ref MemoryMarshal.GetReference(k switch
        {
            0 => a,
            1 => b,
            2 => c,
            _ => d,
        });

    private static float Weight(int k, double wa, double wb, double wc, double wd) => (float)(k switch
    {
        0 => wa,
        1 => wb,
        2 => wc,
        _ => wd,
    });

    // One element loop for every term count: the sum is a struct the JIT specialises, so each count gets its own
    // straight-line loop.
    private static void Run<TSum>(int length, TSum sum, ref float dst, ref float copy, bool twice)
        where TSum : ISum, allows ref struct
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512<float> acc = sum.At512((nuint)i);
                acc.StoreUnsafe(ref dst, (nuint)i);
                if (twice)
                {
                    acc.StoreUnsafe(ref copy, (nuint)i);
                }
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256<float> acc = sum.At256((nuint)i);
                acc.StoreUnsafe(ref dst, (nuint)i);
                if (twice)
                {
                    acc.StoreUnsafe(ref copy, (nuint)i);
                }
            }
        }

        for (; i < length; i++)
        {
            float acc = sum.At(i);
            Unsafe.Add(ref dst, i) = acc;
            if (twice)
            {
                Unsafe.Add(ref copy, i) = acc;
            }
        }
    }

    private interface ISum
    {
        Vector512<float> At512(nuint i);

        Vector256<float> At256(nuint i);

        float At(int i);
    }

    private readonly ref struct One : ISum
    {
        private readonly ref float _r0;
        private readonly float _w0;

        public One(ref float r0, float w0)
        {
            _r0 = ref r0;
            _w0 = w0;
        }

        public Vector512<float> At512(nuint i) => Vector512.LoadUnsafe(ref _r0, i) * _w0;

        public Vector256<float> At256(nuint i) => Vector256.LoadUnsafe(ref _r0, i) * _w0;

        public float At(int i) => Unsafe.Add(ref _r0, i) * _w0;
    }

    private readonly ref struct Two : ISum
    {
        private readonly ref float _r0;
        private readonly ref float _r1;
        private readonly float _w0;
        private readonly float _w1;

        public Two(ref float r0, float w0, ref float r1, float w1)
        {
            _r0 = ref r0;
            _r1 = ref r1;
            _w0 = w0;
            _w1 = w1;
        }

        public Vector512<float> At512(nuint i) => (Vector512.LoadUnsafe(ref _r0, i) * _w0) + (Vector512.LoadUnsafe(ref _r1, i) * _w1);

        public Vector256<float> At256(nuint i) => (Vector256.LoadUnsafe(ref _r0, i) * _w0) + (Vector256.LoadUnsafe(ref _r1, i) * _w1);

        public float At(int i) => (Unsafe.Add(ref _r0, i) * _w0) + (Unsafe.Add(ref _r1, i) * _w1);
    }

    private readonly ref struct Three : ISum
    {
        private readonly ref float _r0;
        private readonly ref float _r1;
        private readonly ref float _r2;
        private readonly float _w0;
        private readonly float _w1;
        private readonly float _w2;

        public Three(ref float r0, float w0, ref float r1, float w1, ref float r2, float w2)
        {
            _r0 = ref r0;
            _r1 = ref r1;
            _r2 = ref r2;
            _w0 = w0;
            _w1 = w1;
            _w2 = w2;
        }

        public Vector512<float> At512(nuint i) =>
            (Vector512.LoadUnsafe(ref _r0, i) * _w0) + (Vector512.LoadUnsafe(ref _r1, i) * _w1) + (Vector512.LoadUnsafe(ref _r2, i) * _w2);

        public Vector256<float> At256(nuint i) =>
            (Vector256.LoadUnsafe(ref _r0, i) * _w0) + (Vector256.LoadUnsafe(ref _r1, i) * _w1) + (Vector256.LoadUnsafe(ref _r2, i) * _w2);

        public float At(int i) => (Unsafe.Add(ref _r0, i) * _w0) + (Unsafe.Add(ref _r1, i) * _w1) + (Unsafe.Add(ref _r2, i) * _w2);
    }

    private readonly ref struct Four : ISum
    {
        private readonly ref float _r0;
        private readonly ref float _r1;
        private readonly ref float _r2;
        private readonly ref float _r3;
        private readonly float _w0;
        private readonly float _w1;
        private readonly float _w2;
        private readonly float _w3;

        public Four(ref float r0, float w0, ref float r1, float w1, ref float r2, float w2, ref float r3, float w3)
        {
            _r0 = ref r0;
            _r1 = ref r1;
            _r2 = ref r2;
            _r3 = ref r3;
            _w0 = w0;
            _w1 = w1;
            _w2 = w2;
            _w3 = w3;
        }

        public Vector512<float> At512(nuint i) =>
            (Vector512.LoadUnsafe(ref _r0, i) * _w0) + (Vector512.LoadUnsafe(ref _r1, i) * _w1) + (Vector512.LoadUnsafe(ref _r2, i) * _w2)
            + (Vector512.LoadUnsafe(ref _r3, i) * _w3);

        public Vector256<float> At256(nuint i) =>
            (Vector256.LoadUnsafe(ref _r0, i) * _w0) + (Vector256.LoadUnsafe(ref _r1, i) * _w1) + (Vector256.LoadUnsafe(ref _r2, i) * _w2)
            + (Vector256.LoadUnsafe(ref _r3, i) * _w3);

        public float At(int i) =>
            (Unsafe.Add(ref _r0, i) * _w0) + (Unsafe.Add(ref _r1, i) * _w1) + (Unsafe.Add(ref _r2, i) * _w2) + (Unsafe.Add(ref _r3, i) * _w3);
    }
}
