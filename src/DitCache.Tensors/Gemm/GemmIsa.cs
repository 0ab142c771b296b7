namespace DitCache.Tensors;

/// <summary>Instruction set for <see cref="ManagedGemm"/>'s micro-kernel.</summary>
public enum GemmIsa
{
    /// <summary>The widest the machine accelerates: AVX-512, else AVX2+FMA, else scalar.</summary>
    Auto,

    /// <summary>Vector512 with FMA (needs AVX-512F); tiles of 8 rows x 32 columns.</summary>
    Avx512,

    /// <summary>Vector256 with FMA (needs AVX2 and FMA); tiles of 6 rows x 16 columns.</summary>
    Avx2,

    /// <summary>Plain float arithmetic; runs everywhere, used as a fallback and to test the packing logic.</summary>
    Scalar,
}
