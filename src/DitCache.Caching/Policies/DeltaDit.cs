using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// Δ-DiT (Chen et al., "Δ-DiT: A Training-Free Acceleration Method Tailored for Diffusion Transformers", arXiv
/// 2406.01125; no official code; docs/methods.md §5.4). Δ-Cache: at an update step every block runs and, for a
/// contiguous group G of k blocks, <c>Δ = out_G − in_G</c> is stored; at the other steps G is skipped and
/// <c>out_G ≈ in_G + Δ</c> with the current input. Stage-adaptive: before the boundary b the group is the rear k
/// blocks (the detail blocks), from b on the front k blocks (the outline blocks). Spec:
/// <c>delta-dit:n=2,b=25,blocks=6</c>.
/// </summary>
/// <remarks>
/// Readings (the paper has no code): update steps are the ordinals n with n mod N = 0 (n = 0 first); an update step
/// stores both groups' Δ, so the switch at b needs no extra step; b and k default to half the steps and half the
/// blocks of the run (the paper tunes them per model; the values behind the FoCa tables are unknown).
/// </remarks>
/// <param name="Interval">N, knob <c>n</c>: refresh interval in steps (default 2).</param>
/// <param name="Boundary">b, knob <c>b</c>: first sampling ordinal that caches the front group; 0 caches the front
/// group throughout, ≥ steps the rear group throughout. Null (default): half the steps, ⌊S/2⌋.</param>
/// <param name="Blocks">k, knob <c>blocks</c>: blocks in the cached group, 1 … depth. Null (default): ⌊depth/2⌋.</param>
public sealed record DeltaDitOptions(int Interval = 2, int? Boundary = null, int? Blocks = null) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "delta-dit";

    /// <inheritdoc/>
    public string Spec => $"delta-dit:n={Interval}" + (Boundary is { } b ? $",b={b}" : "") + (Blocks is { } k ? $",blocks={k}" : "");

    /// <summary>Parses <c>delta-dit:n=N[,b=B][,blocks=K]</c>; unknown knobs are errors.</summary>
    public static DeltaDitOptions FromSpec(CacheSpec spec)
    {
        int n = spec.GetInt("n", 2);
        int? b = spec.Has("b") ? spec.GetInt("b", 0) : null;
        int? k = spec.Has("blocks") ? spec.GetInt("blocks", 1) : null;
        var options = new DeltaDitOptions(n, b, k);
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (Interval < 1)
        {
            throw new DitCacheException($"--cache delta-dit: n={Interval}; n (refresh interval) must be at least 1 (1 computes every step)", exitCode: 2);
        }

        if (Boundary is < 0)
        {
            throw new DitCacheException($"--cache delta-dit: b={Boundary}; b (the step where caching moves from the rear to the front blocks) must be 0 or more", exitCode: 2);
        }

        if (Blocks is < 1)
        {
            throw new DitCacheException($"--cache delta-dit: blocks={Blocks}; blocks (size of the cached group) must be at least 1", exitCode: 2);
        }
    }

    /// <summary>The boundary b used for a run of <paramref name="steps"/> steps.</summary>
    public int BoundaryFor(int steps) => Boundary ?? steps / 2;

    /// <summary>The group size k used for a model of <paramref name="depth"/> blocks.</summary>
    public int BlocksFor(int depth)
    {
        int k = Blocks ?? Math.Max(1, depth / 2);
        if (k > depth)
        {
            throw new DitCacheException($"--cache delta-dit: blocks={k}, but the model has {depth} blocks; choose 1 … {depth}", exitCode: 2);
        }

        return k;
    }

    /// <summary>Which sampling ordinals are update steps (every block runs).</summary>
    public bool[] FullSteps(int steps)
    {
        var full = new bool[steps];
        for (int n = 0; n < steps; n++)
        {
            full[n] = n % Interval == 0;
        }

        return full;
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new DeltaDit(FullSteps(run.Steps), BoundaryFor(run.Steps), BlocksFor(run.Depth), run);
    }
}

/// <summary>The Δ-DiT policy of one run: each group's input and Δ, (B, T, D) each, allocated at build.</summary>
public sealed class DeltaDit : ICachePolicy
{
    private readonly bool[] _full;
    private readonly int _boundary, _k, _depth;
    private readonly float[] _frontIn, _frontDelta, _rearIn, _rearDelta;
    private int _n = -1;
    private bool _isFull, _hasDelta;

    internal DeltaDit(bool[] full, int boundary, int blocks, CacheRunInfo run)
    {
        _full = full;
        _boundary = boundary;
        _k = blocks;
        _depth = run.Depth;
        int length = run.FeatureLength;
        _frontIn = new float[length];
        _frontDelta = new float[length];
        _rearIn = new float[length];
        _rearDelta = new float[length];
        CacheBytes = 4L * length * sizeof(float);
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("Δ-DiT", n, _n, _full.Length);

        if (n == 0)
        {
            _hasDelta = false;
        }

        _n = n;
        _isFull = _full[n] || !_hasDelta;
    }

    /// <inheritdoc/>
    public int SkipBlocks(int from, Span<float> x)
    {
        PolicyChecks.Started(_n);

        int rearStart = _depth - _k;
        if (_isFull)
        {
            if (from == 0)
            {
                x.CopyTo(_frontIn);
            }

            if (from == rearStart)
            {
                x.CopyTo(_rearIn);
            }

            return from;
        }

        if (_n < _boundary)
        {
            if (from != rearStart)
            {
                return from;
            }

            Residuals.Add(x, _rearDelta);                                    // out ≈ in + Δ (rear group)
            return _depth;
        }

        if (from != 0)
        {
            return from;
        }

        Residuals.Add(x, _frontDelta);                                       // out ≈ in + Δ (front group)
        return _k;
    }

    /// <inheritdoc/>
    public void RecordBlock(int block, ReadOnlySpan<float> output)
    {
        if (!_isFull)
        {
            return;
        }

        if (block == _k - 1)
        {
            Residuals.Difference(output, _frontIn, _frontDelta);
        }

        if (block == _depth - 1)
        {
            Residuals.Difference(output, _rearIn, _rearDelta);
            _hasDelta = true;
        }
    }
}
