namespace DitCache.Models;

/// <summary>
/// The buffers of per-sample passes and block verification (<see cref="DitRunState.SamplePasses"/>). Each is
/// (B, T, D), sized at the run's full batch and allocated once.
/// </summary>
internal sealed class SampleBuffers(int length)
{
    /// <summary>The step's block-stack input (after the embedders), from which every pass starts.</summary>
    public float[] StackInput { get; } = new float[length];

    /// <summary>The whole batch's stream while a pass runs on some rows in the front of the activation buffers.</summary>
    public float[] Parked { get; } = new float[length];

    /// <summary>The input of a block being verified.</summary>
    public float[] BlockInput { get; } = new float[length];

    /// <summary>The drafted output of a block being verified, while it is computed from the same input.</summary>
    public float[] BlockDraft { get; } = new float[length];
}
