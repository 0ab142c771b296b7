using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// FORA: Fast-Forward Caching in Diffusion Transformer Acceleration (Selvaraju et al., arXiv 2407.01425; official code
/// prathebaselva/FORA <c>src/models.py</c>; METHODS.md section 5.1). Static reuse: on a full step every block's
/// attention and MLP outputs (pre-gate) are stored; on the other steps they are reused as they are, with the
/// current step's adaLN gates applied. Spec: <c>fora:n=3</c>.
/// </summary>
/// <param name="Interval">
/// Cache interval N (knob <c>n</c>, default 3 as in the FORA README). With the descending respaced index
/// <c>i = S−1−n</c>, a step is full when <c>i = S−1</c> or <c>i mod N = 0</c>: 18 full steps of 50 at N = 3,
/// 11 at N = 5. N = 1 computes every step.
/// </param>
public sealed record ForaOptions(int Interval = 3) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "fora";

    /// <inheritdoc/>
    public string Spec => $"fora:n={Interval}";

    /// <summary>Parses <c>fora:n=N</c>; unknown knobs are errors.</summary>
    public static ForaOptions FromSpec(CacheSpec spec)
    {
        var options = new ForaOptions(spec.GetInt("n", 3));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate()
    {
        if (Interval < 1)
        {
            throw new DitCacheException($"--cache fora: n={Interval} is not a valid interval; n must be at least 1 (1 computes every step)", exitCode: 2);
        }
    }

    /// <summary>Which sampling ordinals n = 0 … steps−1 compute every block (the rest reuse).</summary>
    public bool[] FullSteps(int steps)
    {
        var full = new bool[steps];
        for (int n = 0; n < steps; n++)
        {
            int i = steps - 1 - n;
            full[n] = i == steps - 1 || i % Interval == 0;
        }

        return full;
    }

    /// <inheritdoc/>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new Fora(FullSteps(run.Steps), run);
    }
}

/// <summary>The FORA policy of one run: one stored (B, T, D) tensor per (block, site), allocated at build.</summary>
public sealed class Fora : ICachePolicy
{
    private readonly bool[] _full;
    private readonly float[][] _store;     // [site] (B, T, D): the module output of the last full step
    private readonly bool[] _has;          // [site] whether _store holds a value of this run
    private readonly int _length;
    private int _n = -1;
    private bool _isFull;

    internal Fora(bool[] full, CacheRunInfo run)
    {
        _full = full;
        _length = run.FeatureLength;
        _store = new float[2 * run.Depth][];
        for (int k = 0; k < _store.Length; k++)
        {
            _store[k] = new float[_length];
        }

        _has = new bool[_store.Length];
        CacheBytes = (long)_store.Length * _length * sizeof(float);
    }


    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        if (n < 0 || n >= _full.Length || (n != 0 && n != _n + 1))
        {
            throw new InvalidOperationException($"FORA was built for {_full.Length} steps and is at step {_n}; step {n} cannot follow (steps run 0, 1, 2, …)");
        }

        if (n == 0)
        {
            Array.Clear(_has);
        }

        _n = n;
        _isFull = _full[n];
    }


    /// <inheritdoc/>
    public bool TryForecast(FeatureSite site, Span<float> output)
    {
        int k = SiteIndex(site);
        if (_isFull || !_has[k])
        {
            return false;
        }

        _store[k].CopyTo(output);
        return true;
    }

    /// <inheritdoc/>
    public void Record(FeatureSite site, ReadOnlySpan<float> output)
    {
        int k = SiteIndex(site);
        if (output.Length != _length)
        {
            throw new ArgumentException($"feature of {site} has {output.Length} floats; this run's (B, T, D) has {_length}", nameof(output));
        }

        output.CopyTo(_store[k]);
        _has[k] = true;
    }


    private int SiteIndex(FeatureSite site) => PolicyChecks.SiteIndex(site, _n, _store.Length);
}
