using System;
using System.Collections.Generic;

namespace DitCache.Evaluation.Bench;

/// <summary>
/// One configuration of a benchmark: an accelerator spec at a step count and guidance scale. Its key
/// (<see cref="Key"/>) identifies it in the results file, so a resumed run skips what is done.
/// </summary>
/// <param name="Cache">The <c>--cache</c> spec, e.g. <c>foca:n=5</c>; <c>none</c> computes every block.</param>
/// <param name="Steps">Sampling steps (respaced from 1000); fewer steps with <c>none</c> is the plain-DDIM baseline.</param>
/// <param name="Cfg">Classifier-free guidance scale.</param>
public sealed record BenchConfig(string Cache, int Steps, float Cfg)
{
    /// <summary>Stable identity: <c>cache|steps=S|cfg=X</c>.</summary>
    public string Key => FormattableString.Invariant($"{Cache}|steps={Steps}|cfg={Cfg}");

    /// <summary>Method family for charts: the accelerator name, with FoCa's readings and the step baseline apart.</summary>
    public string Family { get; init; } = "";

    /// <summary>Short label for tables and legends, e.g. <c>FoCa n=5</c> or <c>DDIM 20 steps</c>.</summary>
    public string Label { get; init; } = "";

    /// <summary>Whether this is the full-compute reference of its guidance scale (50-step plain sampling).</summary>
    public bool IsReference { get; init; }
}

/// <summary>The measured outcome of one configuration.</summary>
public sealed class BenchEntry
{
    /// <summary>The configuration.</summary>
    public required BenchConfig Config { get; init; }

    /// <summary>Steps where every block ran (the papers' "full steps" budget); for a policy that decides per sample, steps where every image did.</summary>
    public required int ComputedSteps { get; init; }

    /// <summary>For a policy that decides per sample: the mean number of steps in which an image ran every block; null otherwise.</summary>
    public double? FullStepsPerImage { get; init; }

    /// <summary>FLOPs of sampling all images (DiT-paper convention, whole CFG batch).</summary>
    public required double Flops { get; init; }

    /// <summary>FLOPs of the full-compute reference at the same guidance scale, same images.</summary>
    public required double ReferenceFlops { get; init; }

    /// <summary>ReferenceFlops / Flops.</summary>
    public double FlopsSpeedup => Flops > 0 ? ReferenceFlops / Flops : 0;

    /// <summary>Wall clock of the sampling loops, one value per repeat (seconds).</summary>
    public List<double> Seconds { get; init; } = [];

    /// <summary>Median of <see cref="Seconds"/>.</summary>
    public double MedianSeconds => Median(Seconds);

    /// <summary>Median seconds of the reference at the same guidance scale divided by this median, measured in the same run.</summary>
    public double Speedup { get; set; }

    /// <summary>Mean PSNR (dB) of the images against the full-compute images at the same seeds (docs/methods.md §9.2; capped at 100).</summary>
    public required double Psnr { get; init; }

    /// <summary>Mean SSIM against the full-compute images at the same seeds (docs/methods.md §9.2).</summary>
    public required double Ssim { get; init; }

    /// <summary>Relative L2 of all final samples against the full-compute ones.</summary>
    public required double RelativeL2 { get; init; }

    /// <summary>Frechet distance of the quality model's features against the real images (NaN without a quality model).</summary>
    public required double FrechetDistance { get; init; }

    /// <summary>Fraction of samples the quality model's classifier assigns to their requested class (NaN without one).</summary>
    public required double Accuracy { get; init; }

    /// <summary>Feature memory the accelerator held for one batch (bytes).</summary>
    public required long CacheBytes { get; init; }

    /// <summary>Per sampling step: C every block computed, F modules forecast, S whole stack skipped, P partly computed.</summary>
    public required string Timeline { get; init; }

    /// <summary>
    /// From a shadow run (may be null): per sampling step, the mean relative L2 error of the forecast sites (NaN on
    /// computed steps).
    /// </summary>
    public double[]? ShadowPerStep { get; set; }

    /// <summary>From a shadow run (may be null): per block, the mean relative L2 error over its forecast sites and steps.</summary>
    public double[]? ShadowPerBlock { get; set; }

    /// <summary>The first sample of each class, (classes, C, H, W) row-major, for image grids.</summary>
    public required float[] Strip { get; init; }

    /// <summary>Median of a list (NaN when empty).</summary>
    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        double[] sorted = [.. values];
        Array.Sort(sorted);
        int m = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[m] : 0.5 * (sorted[m - 1] + sorted[m]);
    }
}

/// <summary>Everything a benchmark run measured, with the settings that make it reproducible.</summary>
public sealed class BenchResults
{
    /// <summary>Model name (file or embedded resource).</summary>
    public required string Model { get; init; }

    /// <summary>Machine description (CPU, cores, OS, runtime).</summary>
    public required string Machine { get; init; }

    /// <summary>The command line that produced the results.</summary>
    public required string Command { get; init; }

    /// <summary>Images per configuration.</summary>
    public required int Samples { get; init; }

    /// <summary>Timed repeats per configuration.</summary>
    public required int Repeats { get; set; }

    /// <summary>Base seed (every configuration sees the same initial noise).</summary>
    public required int Seed { get; init; }

    /// <summary>Sampler name.</summary>
    public required string Sampler { get; init; }

    /// <summary>Threads.</summary>
    public required int Threads { get; init; }

    /// <summary>GEMM backend.</summary>
    public required string Gemm { get; init; }

    /// <summary>Frechet distance between the two halves of the real test set (the floor).</summary>
    public required double FloorFrechetDistance { get; init; }

    /// <summary>Frechet distance of real training images at the same sample count (the matched floor).</summary>
    public required double MatchedFloorFrechetDistance { get; init; }

    /// <summary>Class labels of the strip columns (<see cref="BenchEntry.Strip"/>).</summary>
    public required int[] StripClasses { get; init; }

    /// <summary>(C, H, W) of one sample; null in files from before it was recorded (the reports then infer it).</summary>
    public int[]? ImageShape { get; set; }

    /// <summary>Names of the strip classes, parallel to <see cref="StripClasses"/>, from the quality model; null: show the labels.</summary>
    public string[]? ClassNames { get; set; }

    /// <summary>Measured configurations in plan order.</summary>
    public List<BenchEntry> Entries { get; init; } = [];
}
