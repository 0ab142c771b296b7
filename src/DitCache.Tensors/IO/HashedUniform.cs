using System.Text;

namespace DitCache.Tensors.IO;

/// <summary>
/// Deterministic stand-in weights shared with the Python references (tools/reference/vae_reference.py
/// <c>hashed_uniform</c>): value i of tensor <c>key</c> is <c>u = (lowbias32(i·0x9E3779B1 + fnv1a(key)) &gt;&gt; 8) / 2^23 − 1</c>
/// in [−1, 1), exact in float32, so PyTorch and DitCache build bit-identical random weights of any shape without a
/// file between them (tests and benchmarks of the real shapes, whose published weights cannot be downloaded here).
/// </summary>
public static class HashedUniform
{
    /// <summary>The FNV-1a hash of the UTF-8 bytes of <paramref name="key"/>: the seed of its values.</summary>
    public static uint Seed(string key)
    {
        uint seed = 0x811C9DC5u;
        foreach (byte b in Encoding.UTF8.GetBytes(key))
        {
            seed = (seed ^ b) * 0x01000193u;
        }

        return seed;
    }

    /// <summary>Value <paramref name="i"/> of the tensor seeded by <paramref name="seed"/>, in [−1, 1).</summary>
    public static double At(uint seed, int i)
    {
        uint x = unchecked(((uint)i * 0x9E3779B1u) + seed);                                       // lowbias32
        x ^= x >> 16;
        x = unchecked(x * 0x7FEB352Du);
        x ^= x >> 15;
        x = unchecked(x * 0x846CA68Bu);
        x ^= x >> 16;
        return ((x >> 8) / (double)(1 << 23)) - 1.0;
    }
}
