using System;
using DitCache.Tensors;

namespace DitCache.Caching;

/// <summary>
/// FORA: Fast-Forward Caching in Diffusion Transformer Acceleration (Selvaraju et al., arXiv 2407.01425; official code
/// prathebaselva/FORA <c>src/models.py</c>; docs/methods.md §5.1). Static reuse: on a full step every block's
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

    /// <inheritdoc/>
    public long Bytes(CacheRunInfo run) => (long)FeatureSite.PerBlock * run.Depth * run.FeatureLength * sizeof(float);

    /// <summary>
    /// FreqCa at order 0 (the whole-stack residual reused, no forecast) at the same interval with a warm-up of 1, the
    /// closest single-residual reuse (<see cref="CacheBudget"/>; FORA's schedule counts from the last step instead).
    /// </summary>
    public ICacheOptions? Coarser() => new FreqCaOptions(Interval, MaxOrder: 0, Warmup: 1);
}

/// <summary>The FORA policy of one run: one stored (B, T, D) tensor per (block, site), allocated at build.</summary>
public sealed class Fora : ICachePolicy
{
    private readonly bool[] _full;
    private readonly ModuleStore _store;   // the module output of the last full step, per site
    private int _n = -1;
    private bool _isFull;

    internal Fora(bool[] full, CacheRunInfo run)
    {
        _full = full;
        _store = new ModuleStore(run);
        CacheBytes = _store.Bytes;
    }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        PolicyChecks.NextStep("FORA", n, _n, _full.Length);

        if (n == 0)
        {
            _store.Clear();
        }

        _n = n;
        _isFull = _full[n];
    }

    /// <inheritdoc/>
    public bool TryForecast(FeatureSite site, Span<float> output)
    {
        _store.Check(site, _n);
        return !_isFull && _store.TryLoad(site, _n, output);
    }

    /// <inheritdoc/>
    public void Record(FeatureSite site, ReadOnlySpan<float> output)
    {
        _store.Save(site, _n, output);
    }
}
