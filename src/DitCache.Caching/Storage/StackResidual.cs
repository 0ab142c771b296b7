using System;

namespace DitCache.Caching;

/// <summary>
/// The whole-stack residual of TeaCache and MagCache and their shared skip rule (<see cref="SkipBlocks"/>,
/// <see cref="RecordBlock"/>): keeps the stack input of a computed step, stores <c>R = last-block output − stack
/// input</c> when the stack has run, and stands in for a skipped stack with <c>x ← x + R</c>. Two (B, T, D) buffers,
/// allocated once.
/// </summary>
public sealed class StackResidual
{
    private readonly float[] _input, _residual;
    private readonly int _depth;

    /// <summary>Buffers for tensors of <paramref name="length"/> floats, for a model of <paramref name="depth"/> blocks.</summary>
    public StackResidual(int length, int depth)
    {
        _input = new float[length];
        _residual = new float[length];
        _depth = depth;
    }

    /// <summary>Whether a residual has been stored since the last <see cref="Clear"/>.</summary>
    public bool HasResidual { get; private set; }

    /// <summary>Bytes held.</summary>
    public long Bytes => 2L * _input.Length * sizeof(float);

    /// <summary>Forgets the stored residual (a new run).</summary>
    public void Clear() => HasResidual = false;

    /// <summary>Keeps the stack input of a step whose blocks will run.</summary>
    public void KeepInput(ReadOnlySpan<float> x) => x.CopyTo(_input);

    /// <summary>Stores R from the last block's output of the step whose input was kept.</summary>
    public void Record(ReadOnlySpan<float> output)
    {
        Residuals.Difference(output, _input, _residual);
        HasResidual = true;
    }

    /// <summary>x ← x + R.</summary>
    public void Apply(Span<float> x) => Residuals.Add(x, _residual);

    /// <summary>
    /// <see cref="ICachePolicy.SkipBlocks"/> for a policy that skips the whole stack or nothing: at block 0 of a step
    /// the policy decided to <paramref name="skip"/>, and once a residual is stored, x ← x + R and every block is
    /// skipped; otherwise the stack input is kept and the blocks run.
    /// </summary>
    public int SkipBlocks(int from, Span<float> x, bool skip)
    {
        if (from != 0)
        {
            return from;
        }

        if (skip && HasResidual)
        {
            Apply(x);                                                        // x ← x + R
            return _depth;
        }

        KeepInput(x);
        return 0;
    }

    /// <summary><see cref="ICachePolicy.RecordBlock"/>: after the last block, stores R = stack output − stack input.</summary>
    public void RecordBlock(int block, ReadOnlySpan<float> output)
    {
        if (block == _depth - 1)
        {
            Record(output);
        }
    }
}
