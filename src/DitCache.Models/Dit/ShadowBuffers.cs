namespace DitCache.Models;

/// <summary>
/// The buffers of shadow diagnostics (<see cref="DitRunState.Shadow"/>): on a cached step the model also computes
/// what the cache stood in for, from the same inputs, and measures the stand-in against it. Each is (B, T, D),
/// allocated once when shadowing is switched on.
/// </summary>
internal sealed class ShadowBuffers(int length)
{
    /// <summary>The true module output on a forecast step.</summary>
    public float[] Feature { get; } = new float[length];

    /// <summary>The block-stack input, kept before a block-level cache may overwrite it.</summary>
    public float[] Input { get; } = new float[length];

    /// <summary>The stand-in output of skipped blocks, held while the true blocks run.</summary>
    public float[] Forecast { get; } = new float[length];
}
