using System;
using System.IO;
using System.Linq;
using DitCache.Evaluation.Bench;
using DitCache.Evaluation.Tests.Quality;
using DitCache.Models;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Evaluation.Tests.Bench;

/// <summary>
/// The bench harness on a model that is not the shipped Fashion-MNIST one (a random latent-shaped DiT: 4 channels,
/// 16×16, 3 classes, no quality model), and <see cref="BenchSession"/>'s resume and report files.
/// </summary>
public sealed class BenchSessionTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"ditcache-session-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static DitModel LatentModel() =>
        new(DitWeights.FromFile(QualityEvaluationTests.RandomDit(hidden: 32, depth: 2, patch: 4, channels: 4, size: 16)), new ManagedGemm(1), 1);

    private static BenchSettings Settings(int seed = 0) => new([2, 0], SamplesPerClass: 2, Repeats: 1, Seed: seed, BatchSize: 3, ShadowImages: 2);

    private static BenchResults Fresh(BenchRunner runner, BenchSettings settings) =>
        BenchRunner.NewResults(settings, "random-latent (sha256 0)", "test machine", "test", 1, "managed", null, runner.MatchedFloor(settings, null));

    [Fact]
    public void A_latent_model_without_a_quality_model_is_benched_on_fidelity_and_resumed()
    {
        var runner = new BenchRunner(LatentModel(), quality: null);
        BenchSettings settings = Settings();
        var plan = BenchPlan.Parse(["fora:n=2 steps=6", "none steps=3"], "test", steps: 6, cfg: 1.5f);
        BenchSession session = BenchSession.Open(_dir, Fresh(runner, settings));
        Assert.False(session.Resumed);
        int saves = 0;
        runner.Run(plan, settings, null, session.Results, (_, _) =>
        {
            session.Save();
            saves++;
        });

        Assert.Equal(plan.Count, saves);
        BenchResults planned = session.Planned(plan);
        Assert.Equal([2, 0], planned.StripClasses);
        Assert.Null(planned.ClassNames);
        Assert.True(double.IsNaN(planned.FloorFrechetDistance));
        Assert.True(double.IsNaN(planned.MatchedFloorFrechetDistance));
        BenchEntry reference = planned.Entries.Single(e => e.Config.IsReference);
        BenchEntry fora = planned.Entries.Single(e => e.Config.Cache.StartsWith("fora", StringComparison.Ordinal));
        BenchEntry fewer = planned.Entries.Single(e => !e.Config.IsReference && e.Config.Cache == "none");
        foreach (BenchEntry e in planned.Entries)
        {
            Assert.True(double.IsNaN(e.FrechetDistance), e.Config.Key);
            Assert.True(double.IsNaN(e.Accuracy), e.Config.Key);
            Assert.Equal(2 * 4 * 16 * 16, e.Strip.Length);                     // the first image of each class, (2, 4, 16, 16)
        }

        // FORA n=2 on 6 steps computes the respaced indices i = 5, 4, 2, 0 (i = S−1 or i mod 2 = 0; docs/methods.md
        // §5.1): 4 of 6 steps in full, cached steps pay their adaLN, so just under 1.5x.
        Assert.Equal("CCFCFC", fora.Timeline);
        Assert.Equal(4, fora.ComputedSteps);
        Assert.InRange(fora.FlopsSpeedup, 1.4, 1.5);
        Assert.Equal(2.0, fewer.FlopsSpeedup, 9);                              // 3 of 6 steps, every block
        Assert.Equal(reference.Flops, fewer.ReferenceFlops);
        Assert.True(double.IsFinite(fora.Psnr) && fora.Psnr > 0, $"PSNR {fora.Psnr}");
        Assert.True(fora.RelativeL2 > 0 && fora.RelativeL2 < 1, $"rel. L2 {fora.RelativeL2}");
        Assert.NotNull(fora.ShadowPerStep);

        // Reports: no grid for 4-channel latents, every other file written.
        string[] written = [.. session.WriteReports(planned)];
        Assert.DoesNotContain("grid.png", written);
        Assert.Contains("report.html", written);
        Assert.All(written, name => Assert.True(File.Exists(Path.Combine(_dir, name)), name));
        Assert.True(File.Exists(session.ResultsPath));

        // Reopened with the same settings: resumed, nothing left to measure.
        BenchSession again = BenchSession.Open(_dir, Fresh(runner, settings));
        Assert.True(again.Resumed);
        Assert.Equal(plan.Count, again.MeasuredBefore);
        runner.Run(plan, settings, null, again.Results, (_, _) => Assert.Fail("a resumed complete plan measured again"));

        // Another seed or other classes are refused, naming what differs.
        DitCacheException seed = Assert.Throws<DitCacheException>(() => BenchSession.Open(_dir, Fresh(runner, Settings(seed: 1))));
        Assert.Contains("seed 0, this run asks for 1", seed.Message, StringComparison.Ordinal);
        DitCacheException classes = Assert.Throws<DitCacheException>(() =>
            BenchSession.Open(_dir, Fresh(runner, Settings() with { Classes = [0, 1] })));
        Assert.Contains("classes 2,0, this run asks for 0,1", classes.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void One_image_is_enough_without_a_quality_model()
    {
        // The Frechet distance needs two samples; fidelity to full compute needs one (a DiT-XL/2 timing run on a CPU).
        var runner = new BenchRunner(LatentModel(), quality: null);
        var settings = new BenchSettings([1], SamplesPerClass: 1, Repeats: 1, Seed: 0, BatchSize: 1, ShadowImages: 0);
        var plan = BenchPlan.Parse(["fora:n=2 steps=4"], "test", steps: 4, cfg: 1.5f);
        BenchSession session = BenchSession.Open(_dir, Fresh(runner, settings));
        runner.Run(plan, settings, null, session.Results, (_, _) => { });
        BenchEntry fora = session.Planned(plan).Entries.Single(e => !e.Config.IsReference);
        Assert.True(fora.Psnr > 0 && double.IsNaN(fora.FrechetDistance), $"PSNR {fora.Psnr}, FD {fora.FrechetDistance}");
    }

    [Fact]
    public void Output_paths_are_checked_before_anything_runs()
    {
        Directory.CreateDirectory(_dir);
        string file = Path.Combine(_dir, "a-file");
        File.WriteAllText(file, "x");
        DitCacheException isFile = Assert.Throws<DitCacheException>(() => BenchSession.CheckDirectory(file));
        Assert.Equal($"--out {file} is a file; give a directory", isFile.Message);
        Assert.Equal(2, isFile.ExitCode);
        string orphan = Path.Combine(_dir, "missing", "out");
        DitCacheException noParent = Assert.Throws<DitCacheException>(() => BenchSession.CheckDirectory(orphan));
        Assert.Contains("does not exist; create it first", noParent.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Fingerprint_changes_with_any_weight()
    {
        TensorFile a = QualityEvaluationTests.RandomDit(seed: 1);
        TensorFile b = QualityEvaluationTests.RandomDit(seed: 1);
        Assert.Equal(BenchSession.Fingerprint(a), BenchSession.Fingerprint(b));
        b.Tensors["final_layer.linear.bias"].Data[0] += 1e-3f;
        Assert.NotEqual(BenchSession.Fingerprint(a), BenchSession.Fingerprint(b));
        Assert.StartsWith("(sha256 ", BenchSession.Fingerprint(a), StringComparison.Ordinal);
    }
}
