using System;
using DitCache.Tensors;

namespace DitCache.Caching.Calibration;

/// <summary>
/// A policy that computes every block and module of every step and records, through the seam, what the calibrated
/// methods need (docs/methods.md §5.5, §5.7, §5.8): TeaCache's relative L1 change of block 0's modulated input, MagCache's
/// residual-norm ratio γ_n, and SmoothCache's per-module relative L1 errors against the outputs 1 … L steps back.
/// The model output side of TeaCache's pairs is measured by the sampling loop (<see cref="RelativeError.L1"/> on the
/// guided ε). Buffers are allocated at construction; nothing is allocated per step.
/// </summary>
public sealed class CalibrationRecorder : ICachePolicy
{
    private readonly int _steps;
    private readonly int _depth;
    private readonly int _length;
    private readonly int _tokens;          // B·T rows of width D
    private readonly int _hidden;
    private readonly int _lookahead;
    private readonly float[] _previousIndicator;  // (B, T, D)
    private readonly float[] _input;              // (B, T, D) block-0 input of this step
    private readonly double[] _previousNorms;     // (B·T) ‖r_{n−1}‖ per token
    private readonly float[][] _history;          // [site · L + slot] (B, T, D): ring of the last L module outputs
    private readonly double[][][] _rowSums;       // [type][r−1][i]: Σ over blocks of the error of reusing step i at i + r
    private int _n = -1;

    /// <summary>A recorder for <paramref name="run"/> with SmoothCache lookahead <paramref name="lookahead"/>.</summary>
    public CalibrationRecorder(CacheRunInfo run, int lookahead)
    {
        ArgumentNullException.ThrowIfNull(run);
        run.Validate();
        if (lookahead < 1 || lookahead >= run.Steps)
        {
            throw new ArgumentOutOfRangeException(nameof(lookahead), lookahead, $"must be in [1, {run.Steps - 1}]");
        }

        _steps = run.Steps;
        _depth = run.Depth;
        _length = run.FeatureLength;
        _hidden = run.Hidden;
        _tokens = run.Batch * run.Tokens;
        _lookahead = lookahead;
        _previousIndicator = new float[_length];
        _input = new float[_length];
        _previousNorms = new double[_tokens];
        _history = new float[FeatureSite.PerBlock * _depth * lookahead][];
        for (int k = 0; k < _history.Length; k++)
        {
            _history[k] = new float[_length];
        }

        _rowSums = new double[FeatureSite.PerBlock][][];
        for (int type = 0; type < FeatureSite.PerBlock; type++)
        {
            _rowSums[type] = new double[lookahead][];
            for (int r = 1; r <= lookahead; r++)
            {
                _rowSums[type][r - 1] = new double[_steps - r];
            }
        }

        RelIn = new double[_steps - 1];
        Gamma = new double[_steps];
        CacheBytes = ((long)_history.Length + 2) * _length * sizeof(float);
    }

    /// <summary>TeaCache: rel_in for n = 1 … S−1 (index n−1).</summary>
    public double[] RelIn { get; }

    /// <summary>MagCache: γ_n for n = 0 … S−1 (γ_0 = 1).</summary>
    public double[] Gamma { get; }

    /// <inheritdoc/>
    public long CacheBytes { get; }

    /// <summary>SmoothCache rows of one component type, averaged over the blocks: [r−1][i], lengths S − r.</summary>
    public double[][] Rows(Site type)
    {
        double[][] sums = _rowSums[(int)type];
        var rows = new double[sums.Length][];
        for (int r = 0; r < sums.Length; r++)
        {
            rows[r] = Array.ConvertAll(sums[r], s => s / _depth);
        }

        return rows;
    }

    /// <summary>
    /// Everything recorded, for the sections of <paramref name="run"/>; <paramref name="relOut"/> is TeaCache's model
    /// output side, measured by the sampling loop.
    /// </summary>
    public CalibrationMeasurements Measurements(CalibrationRun run, double[] relOut) =>
        new(run, _lookahead, RelIn, relOut, Gamma, Rows(Site.Attn), Rows(Site.Mlp));

    /// <inheritdoc/>
    public bool WantsModulatedInput => true;

    /// <inheritdoc/>
    public void BeginStep(int n, float timestep)
    {
        if (n != _n + 1 || n >= _steps)
        {
            throw new InvalidOperationException($"the calibration recorder runs once over steps 0 … {_steps - 1}; step {n} cannot follow {_n}");
        }

        _n = n;
    }

    /// <inheritdoc/>
    public void ObserveModulatedInput(ReadOnlySpan<float> modulated)
    {
        if (_n > 0)
        {
            RelIn[_n - 1] = RelativeError.L1(modulated, _previousIndicator);
        }

        modulated.CopyTo(_previousIndicator);
    }

    /// <inheritdoc/>
    public int SkipBlocks(int from, Span<float> x)
    {
        if (from == 0)
        {
            x.CopyTo(_input);
        }

        return from;
    }

    /// <inheritdoc/>
    public void RecordBlock(int block, ReadOnlySpan<float> output)
    {
        if (block != _depth - 1)
        {
            return;
        }

        double sum = 0;
        for (int row = 0; row < _tokens; row++)
        {
            double sq = 0;
            int o = row * _hidden;
            for (int j = 0; j < _hidden; j++)
            {
                double r = output[o + j] - (double)_input[o + j];
                sq += r * r;
            }

            double norm = Math.Sqrt(sq);
            if (_n > 0)
            {
                sum += norm / _previousNorms[row];
            }

            _previousNorms[row] = norm;
        }

        Gamma[_n] = _n == 0 ? 1.0 : sum / _tokens;
    }

    /// <inheritdoc/>
    public void Record(FeatureSite site, ReadOnlySpan<float> output)
    {
        int type = (int)site.Site;
        for (int r = 1; r <= _lookahead && r <= _n; r++)
        {
            float[] back = _history[Slot(site, _n - r)];
            _rowSums[type][r - 1][_n - r] += RelativeError.L1(back, output, zeroReference: 0);   // ‖prev − cur‖₁ / ‖cur‖₁
        }

        output.CopyTo(_history[Slot(site, _n)]);
    }

    private int Slot(FeatureSite site, int n) => (site.Index * _lookahead) + (n % _lookahead);
}
