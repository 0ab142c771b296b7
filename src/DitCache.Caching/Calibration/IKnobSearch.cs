namespace DitCache.Caching.Calibration;

/// <summary>One evaluated knob value of a tuning search.</summary>
/// <param name="Value">The knob value.</param>
/// <param name="Spec">The cache spec.</param>
/// <param name="FlopsRatio">Measured full FLOPs / cached FLOPs on the calibration samples.</param>
/// <param name="Psnr">Mean PSNR against the full-compute samples (NaN when not run).</param>
public sealed record TuningPoint(double Value, string Spec, double FlopsRatio, double Psnr);

/// <summary>
/// FLOPs of one model forward of the calibration batch, split as a static per-module schedule needs them.
/// </summary>
/// <param name="Depth">Blocks.</param>
/// <param name="Forward">The whole forward.</param>
/// <param name="AdaLn">One block's adaLN modulation (runs on every step).</param>
/// <param name="Attention">One block's attention with its LayerNorm.</param>
/// <param name="Mlp">One block's MLP with its LayerNorm.</param>
public sealed record ForwardFlops(int Depth, double Forward, double AdaLn, double Attention, double Mlp);

/// <summary>
/// What a method's knob search (<see cref="ICalibrationSection.Tune"/>) may do: sample the calibration classes with
/// candidate options against the full-compute samples of the same run, and compute FLOPs of a static schedule
/// without sampling. Every measured point is kept; <see cref="Choose"/> picks among them.
/// </summary>
public interface IKnobSearch
{
    /// <summary>The requested FLOPs ratio (full FLOPs / cached FLOPs).</summary>
    double Target { get; }

    /// <summary>Sampling steps of the run.</summary>
    int Steps { get; }

    /// <summary>FLOPs of one forward of the run's batch.</summary>
    ForwardFlops Flops { get; }

    /// <summary>Samples with <paramref name="options"/> (knob value <paramref name="value"/>) and keeps the measured point.</summary>
    TuningPoint Measure(ICacheOptions options, double value);

    /// <summary>The measured point whose ratio is closest to the target (ties: the higher PSNR), as the tuned setting of <paramref name="knob"/>.</summary>
    TunedSetting Choose(string knob);
}
