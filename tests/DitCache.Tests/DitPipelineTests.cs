using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using DitCache.Caching;
using DitCache.Tensors;
using DitCache.Tensors.IO;
using Xunit;

namespace DitCache.Tests;

/// <summary>
/// The library face against PyTorch (the pipeline and cache fixtures of tools/reference/make_pipeline_fixtures.py and
/// make_cache_fixtures.py), the PNG against a reader and byte mapping written here, progress, cancellation, the
/// documented thread safety, and the bad-input messages.
/// </summary>
public class DitPipelineTests
{
    private static readonly TensorFile s_pipelineGolden = SafeTensors.Load(TestFiles.Data("pipeline", "tiny_pipeline_golden.safetensors"));
    private static readonly TensorFile s_cacheGolden = SafeTensors.Load(TestFiles.Data("dit", "tiny_dit_cache_golden.safetensors"));

    // Every test pins the managed GEMM: the bit-for-bit claims hold for it on any thread count (class remarks).
    private static readonly PipelineOptions s_managed = new() { Gemm = "managed", Threads = 2 };

    private static readonly Lazy<DitPipeline> s_embedded = new(() => DitPipeline.Load(null, s_managed));

    // The tiny random DiT of the fixtures (2 blocks, hidden 64, 16 tokens, 10 classes, 4 channels): fast enough in a
    // Debug build for the tests that run many steps.
    private static string TinyDit => TestFiles.Data("dit", "tiny_dit.safetensors");

    private static readonly Lazy<DitPipeline> s_tiny = new(() => DitPipeline.Load(TinyDit, s_managed));

    /// <summary>Reports on the sampling thread, at once (a <see cref="Progress{T}"/> would post to the thread pool).</summary>
    private sealed class Recorder(Action<SamplingProgress>? also = null) : IProgress<SamplingProgress>
    {
        public ConcurrentQueue<SamplingProgress> Seen { get; } = new();

        public void Report(SamplingProgress value)
        {
            Seen.Enqueue(value);
            also?.Invoke(value);
        }
    }

    /// <summary>Records the calling thread's allocated bytes at every step into a preallocated array.</summary>
    private sealed class Probe(long[] allocated) : IProgress<SamplingProgress>
    {
        public void Report(SamplingProgress value) => allocated[value.Step] = GC.GetAllocatedBytesForCurrentThread();
    }

    [Fact]
    public void DiffusersFolderWithVaeReproducesThePyTorchPipelineAndItsPng()
    {
        string folder = TestFiles.PipelineFolder();
        DitPipeline pipeline = DitPipeline.Load(folder, s_managed);
        Assert.Equal(Path.Combine(folder, "vae"), pipeline.Vae);
        Assert.Equal(folder, pipeline.Source);
        SampledImages result = pipeline.Sample(new SamplingOptions
        {
            Classes = [3, 7], Steps = 4, Cfg = 4, Noise = s_pipelineGolden.Tensors["noise"],
        });

        // 1e-5 of the largest value, as VaeSampleTests: float32 sums in another order than PyTorch's on latents of
        // |v| ~ 560; measured 4.6e-7 (latent) and 7.9e-7 (image) with the managed GEMM.
        Tensor images = result.Images!;
        Assert.Equal(new[] { 2, 4, 8, 8 }, result.Samples.Shape);
        Assert.Equal(new[] { 2, 3, 32, 32 }, images.Shape);
        Assert.True(TestFiles.MaxRelative(result.Samples.Data, s_pipelineGolden.Tensors["sample"].Data) <= 1e-5, "latent sample");
        Assert.True(TestFiles.MaxRelative(images.Data, s_pipelineGolden.Tensors["image"].Data) <= 1e-5, "decoded image");
        Assert.Contains(images.Data, v => v is < -1f or > 1f);               // the tensor is not clamped

        // The grid: two 32x32 RGB images, a 2-pixel border of zeros; every pixel the save_image mapping of the image
        // tensor, and within one step of PyTorch's bytes (the last float bits can cross a rounding boundary).
        (int width, int height, int channels, byte[] rgb) = TestFiles.DecodePng(result.ToPng());
        Assert.Equal(((2 * 32) + (3 * 2), 32 + (2 * 2), 3), (width, height, channels));
        float[] bytes = s_pipelineGolden.Tensors["bytes"].Data;
        int inexact = 0;
        for (int i = 0; i < 2; i++)
        {
            (int w1, int h1, _, byte[] single) = TestFiles.DecodePng(result.ImagePng(i));
            Assert.Equal((32, 32), (w1, h1));
            for (int ch = 0; ch < 3; ch++)
            {
                for (int y = 0; y < 32; y++)
                {
                    for (int x = 0; x < 32; x++)
                    {
                        int at = (((((i * 3) + ch) * 32) + y) * 32) + x;
                        byte pixel = rgb[((((2 + y) * width) + 2 + (i * 34) + x) * 3) + ch];
                        Assert.Equal(TestFiles.ExpectedByte(images.Data[at]), pixel);
                        Assert.Equal(pixel, single[(((y * 32) + x) * 3) + ch]);
                        Assert.InRange(pixel - bytes[at], -1f, 1f);
                        inexact += pixel == bytes[at] ? 0 : 1;
                    }
                }
            }
        }

        Assert.True(inexact <= 61, $"{inexact} of 6144 bytes differ from PyTorch's by one (measured: 1; at most 1% allowed)");
        Assert.All(Enumerable.Range(0, width * 3), x => Assert.Equal(0, rgb[x]));     // the top border
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AcceleratorFromSpecOrOptionsObjectMatchesThePythonFoCa(bool spec)
    {
        DitPipeline pipeline = DitPipeline.Load(TinyDit, s_managed);
        var options = new SamplingOptions { Classes = [3, 7], Steps = 50, Cfg = 1.5f, Noise = s_cacheGolden.Tensors["noise"] };
        options = spec ? options with { Accelerator = "foca:n=5" } : options with { AcceleratorOptions = new FocaOptions(Interval: 5) };
        SampledImages result = pipeline.Sample(options);

        // The independent Python FoCa of make_cache_fixtures.py: relative L2 measured 2.9e-7 .. 3.8e-7, bound 1.5e-6
        // as CacheParityTests; the full steps are the fixture's, 11 of 50.
        Assert.True(TestFiles.RelativeL2(result.Samples.Data, s_cacheGolden.Tensors["foca_n5.sample"].Data) <= 1.5e-6);
        Assert.Equal((int)s_cacheGolden.Tensors["foca_n5.computed"].Data.Sum(), result.ComputedSteps);
        Assert.Equal(11, result.ComputedSteps);
        Assert.Equal("foca:n=5,warmup=2", result.Accelerator);
        Assert.InRange(result.FullFlops / result.Flops, 4.0, 5.0);          // 50 steps for 11 full ones and cheap forecasts

        // A latent DiT loaded without a VAE has samples but no images.
        Assert.Null(pipeline.Vae);
        Assert.Null(result.Images);
        var error = Assert.Throws<InvalidOperationException>(() => result.ToPng());
        Assert.Contains("PipelineOptions.Vae", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EmbeddedModelPngIsTheGridOfItsImages()
    {
        SampledImages result = s_embedded.Value.Sample(new SamplingOptions { Classes = [0, 1, 2, 3], Steps = 3, Accelerator = "fora:n=2" });
        Assert.Equal("embedded:fmnist-dit.safetensors", s_embedded.Value.Source);
        Assert.Same(result.Samples, result.Images);                          // a pixel-space model: the samples are the images
        Assert.Equal(new[] { 4, 1, 28, 28 }, result.Images!.Shape);
        Assert.Equal(new[] { 0, 1, 2, 3 }, result.Classes);

        (int width, int height, int channels, byte[] gray) = TestFiles.DecodePng(result.ToPng(columns: 2));
        Assert.Equal(((2 * 28) + (3 * 2), (2 * 28) + (3 * 2), 1), (width, height, channels));
        for (int i = 0; i < 4; i++)
        {
            int x0 = 2 + ((i % 2) * 30), y0 = 2 + ((i / 2) * 30);
            for (int y = 0; y < 28; y++)
            {
                for (int x = 0; x < 28; x++)
                {
                    Assert.Equal(TestFiles.ExpectedByte(result.Images.Data[(((i * 28) + y) * 28) + x]), gray[((y0 + y) * width) + x0 + x]);
                }
            }
        }

        Assert.All(Enumerable.Range(0, width), x => Assert.Equal(0, gray[(30 * width) + x]));     // the border between rows
    }

    [Fact]
    public void ProgressCountsEveryStepAndCancellingStopsBetweenStepsLeavingThePipelineReady()
    {
        DitPipeline pipeline = DitPipeline.Load(TinyDit, s_managed);
        var options = new SamplingOptions { Classes = [4, 5], Steps = 10, Accelerator = "foca:n=3", Seed = 3 };
        var all = new Recorder();
        SampledImages reference = pipeline.Sample(options, all);
        Assert.Equal(Enumerable.Range(1, 10).Select(s => new SamplingProgress(s, 10)), all.Seen);

        using var cts = new CancellationTokenSource();
        var cancelling = new Recorder(p =>
        {
            if (p.Step == 3)
            {
                cts.Cancel();
            }
        });
        var error = Assert.Throws<OperationCanceledException>(() => pipeline.Sample(options, cancelling, cts.Token));
        Assert.Equal(cts.Token, error.CancellationToken);
        Assert.Equal([1, 2, 3], cancelling.Seen.Select(p => p.Step));       // no step after the one that cancelled

        // A token cancelled before the call runs no step.
        var none = new Recorder();
        Assert.Throws<OperationCanceledException>(() => pipeline.Sample(options, none, cts.Token));
        Assert.Empty(none.Seen);

        // The cancelled run left nothing behind: the same pipeline gives the reference bit for bit.
        Assert.True(TestFiles.BitEqual(reference.Samples.Data, pipeline.Sample(options).Samples.Data));
    }

    [Fact]
    public async Task SampleAsyncReturnsTheSyncImagesAndHonoursCancellation()
    {
        var options = new SamplingOptions { Classes = [8], Steps = 8, Seed = 5 };
        SampledImages sync = s_tiny.Value.Sample(options);
        SampledImages async = await s_tiny.Value.SampleAsync(options);
        Assert.True(TestFiles.BitEqual(sync.Samples.Data, async.Samples.Data));

        using var cts = new CancellationTokenSource();
        var progress = new Recorder(p =>
        {
            if (p.Step == 2)
            {
                cts.Cancel();
            }
        });
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => s_tiny.Value.SampleAsync(options, progress, cts.Token));
        Assert.Equal([1, 2], progress.Seen.Select(p => p.Step));
    }

    [Fact]
    public async Task TwoPipelinesInParallelGiveTheImagesTheyGiveOneAtATime()
    {
        DitPipeline a = DitPipeline.Load(TinyDit, s_managed), b = DitPipeline.Load(TinyDit, s_managed);
        var optionsA = new SamplingOptions { Classes = [0, 1, 2, 3], Steps = 50, Accelerator = "foca:n=3", Seed = 1 };
        var optionsB = new SamplingOptions { Classes = [9, 8, 7], Steps = 50, Sampler = "ddpm", Accelerator = "taylorseer:n=2", Seed = 2 };
        float[] aloneA = a.Sample(optionsA).Samples.Data, aloneB = b.Sample(optionsB).Samples.Data;

        int overlapping = 0;
        for (int round = 0; round < 5; round++)
        {
            // Step timestamps show whether the two runs really overlapped (each run's first step before the other's last).
            var timesA = new ConcurrentQueue<long>();
            var timesB = new ConcurrentQueue<long>();
            using var start = new Barrier(2);
            Task<SampledImages> ta = Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                return a.Sample(optionsA, new Recorder(_ => timesA.Enqueue(Stopwatch.GetTimestamp())));
            }, TaskCreationOptions.LongRunning);
            Task<SampledImages> tb = Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                return b.Sample(optionsB, new Recorder(_ => timesB.Enqueue(Stopwatch.GetTimestamp())));
            }, TaskCreationOptions.LongRunning);
            Assert.True(TestFiles.BitEqual(aloneA, (await ta).Samples.Data), $"round {round}: pipeline A in parallel differs from A alone");
            Assert.True(TestFiles.BitEqual(aloneB, (await tb).Samples.Data), $"round {round}: pipeline B in parallel differs from B alone");
            overlapping += timesA.First() < timesB.Last() && timesB.First() < timesA.Last() ? 1 : 0;
        }

        Assert.True(overlapping > 0, "in no round did the two runs overlap, so the test showed nothing; rerun on a less loaded machine");
    }

    [Fact]
    public async Task OnePipelineCalledFromTwoThreadsRunsTheCallsInTurn()
    {
        DitPipeline pipeline = DitPipeline.Load(TinyDit, s_managed);
        var optionsA = new SamplingOptions { Classes = [1, 3], Steps = 15, Accelerator = "fora:n=2", Seed = 11 };
        var optionsB = new SamplingOptions { Classes = [6], Steps = 15, Seed = 12 };
        float[] aloneA = pipeline.Sample(optionsA).Samples.Data, aloneB = pipeline.Sample(optionsB).Samples.Data;

        var order = new ConcurrentQueue<char>();
        using var start = new Barrier(2);
        Task<SampledImages> ta = Task.Factory.StartNew(() => { start.SignalAndWait(); return pipeline.Sample(optionsA, new Recorder(_ => order.Enqueue('A'))); }, TaskCreationOptions.LongRunning);
        Task<SampledImages> tb = Task.Factory.StartNew(() => { start.SignalAndWait(); return pipeline.Sample(optionsB, new Recorder(_ => order.Enqueue('B'))); }, TaskCreationOptions.LongRunning);
        Assert.True(TestFiles.BitEqual(aloneA, (await ta).Samples.Data));
        Assert.True(TestFiles.BitEqual(aloneB, (await tb).Samples.Data));

        string steps = string.Concat(order);                                 // one run's 15 steps, then the other's
        Assert.True(steps == new string('A', 15) + new string('B', 15) || steps == new string('B', 15) + new string('A', 15), steps);
    }

    [Fact]
    public void TheStepLoopAllocatesNothingOnTheCallersThread()
    {
        // CONTRIBUTING.md's rule through the facade (its per-step progress and cancellation check included): after 20
        // warm-up steps the sampling thread allocates no managed byte (GC.GetAllocatedBytesForCurrentThread is exact
        // for the calling thread; the worker pool's threads are AllocationTests' part).
        const int Steps = 40;
        var allocated = new long[Steps + 1];
        using var cts = new CancellationTokenSource();
        var progress = new Probe(allocated);
        _ = s_tiny.Value.Sample(new SamplingOptions { Classes = [2, 5], Steps = Steps, Accelerator = "foca:n=3" }, progress, cts.Token);
        Assert.Equal(0, allocated[Steps] - allocated[20]);
    }

    private static readonly Dictionary<string, (SamplingOptions Options, string Message)> s_badOptions = new()
    {
        ["no classes"] = (new() { Classes = [] }, "SamplingOptions.Classes is empty"),
        ["class too large"] = (new() { Classes = [0, 10] }, "SamplingOptions.Classes[1] = 10 is out of range; this model has classes 0..9"),
        ["negative class"] = (new() { Classes = [-1] }, "SamplingOptions.Classes[0] = -1 is out of range"),
        ["no steps"] = (new() { Classes = [0], Steps = 0 }, "SamplingOptions.Steps = 0 is out of range; give 1..1000"),
        ["too many steps"] = (new() { Classes = [0], Steps = 1001 }, "SamplingOptions.Steps = 1001"),
        ["sampler"] = (new() { Classes = [0], Sampler = "euler" }, "SamplingOptions.Sampler 'euler' is unknown"),
        ["cfg below 1"] = (new() { Classes = [0], Cfg = 0.5f }, "SamplingOptions.Cfg = 0.5 is out of range"),
        ["cfg NaN"] = (new() { Classes = [0], Cfg = float.NaN }, "SamplingOptions.Cfg = NaN"),
        ["cfg channels"] = (new() { Classes = [0], CfgChannels = 5 }, "SamplingOptions.CfgChannels = 5 is out of range; this model has 4 input channels (give 1..4"),
        ["eta with ddpm"] = (new() { Classes = [0], Sampler = "ddpm", Eta = 0.5 }, "SamplingOptions.Eta = 0.5 applies to the ddim sampler only"),
        ["negative eta"] = (new() { Classes = [0], Eta = -0.1 }, "SamplingOptions.Eta = -0.1 is out of range"),
        ["noise shape"] = (new() { Classes = [0, 1], Noise = Tensor.Zeros(1, 4, 8, 8) }, "SamplingOptions.Noise has shape [1, 4, 8, 8]; expected [2, 4, 8, 8]"),
        ["noise NaN"] = (new() { Classes = [0], Noise = new Tensor([.. Enumerable.Repeat(float.NaN, 256)], 1, 4, 8, 8) }, "SamplingOptions.Noise holds"),
        ["unknown accelerator"] = (new() { Classes = [0], Accelerator = "fooca:n=3" }, "SamplingOptions.Accelerator 'fooca:n=3': "),
        ["bad knob value"] = (new() { Classes = [0], Accelerator = "foca:n=0" }, "SamplingOptions.Accelerator 'foca:n=0': "),
        ["unknown knob"] = (new() { Classes = [0], Accelerator = "foca:q=1" }, "SamplingOptions.Accelerator 'foca:q=1': "),
        ["both accelerators"] = (new() { Classes = [0], Accelerator = "foca:n=3", AcceleratorOptions = new FocaOptions() }, "are both set; give one of the two"),
        ["bad options object"] = (new() { Classes = [0], AcceleratorOptions = new FocaOptions(Interval: 0) }, "SamplingOptions.AcceleratorOptions (FocaOptions): "),
    };

    public static TheoryData<string> BadOptions => [.. s_badOptions.Keys];

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadSamplingOptionsAreOneLineNamingTheOptionAndRunNothing(string name)
    {
        (SamplingOptions options, string message) = s_badOptions[name];
        var progress = new Recorder();
        ArgumentException error = Assert.ThrowsAny<ArgumentException>(() => s_tiny.Value.Sample(options, progress));
        Assert.Equal("options", error.ParamName);
        Assert.StartsWith("SamplingOptions.", error.Message, StringComparison.Ordinal);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.Empty(progress.Seen);
    }

    [Fact]
    public void BadLoadInputsNameTheArgument()
    {
        string missing = Path.Combine(TestFiles.TempDir(), "nope.safetensors");
        var notFound = Assert.Throws<FileNotFoundException>(() => DitPipeline.Load(missing));
        Assert.StartsWith($"model '{missing}': no such file or folder", notFound.Message, StringComparison.Ordinal);

        var threads = Assert.Throws<ArgumentException>(() => DitPipeline.Load(null, new PipelineOptions { Threads = 0 }));
        Assert.StartsWith("PipelineOptions.Threads 0 is out of range", threads.Message, StringComparison.Ordinal);

        var gemm = Assert.Throws<ArgumentException>(() => DitPipeline.Load(null, new PipelineOptions { Gemm = "fast" }));
        Assert.StartsWith("PipelineOptions.Gemm 'fast' is unknown; expected one of: managed, managed-bf16, openblas, auto", gemm.Message, StringComparison.Ordinal);

        var weights = Assert.Throws<ArgumentException>(() => DitPipeline.Load(null, new PipelineOptions { Weights = "f8" }));
        Assert.StartsWith("PipelineOptions.Weights 'f8' is not a weight precision", weights.Message, StringComparison.Ordinal);

        var half = Assert.Throws<ArgumentException>(() => DitPipeline.Load(null, new PipelineOptions { Weights = "bf16", Gemm = "openblas" }));
        Assert.StartsWith("PipelineOptions.Weights 'bf16' with PipelineOptions.Gemm 'openblas'", half.Message, StringComparison.Ordinal);

        var noVae = Assert.Throws<FileNotFoundException>(() => DitPipeline.Load(null, new PipelineOptions { Vae = missing }));
        Assert.StartsWith($"PipelineOptions.Vae '{missing}': no such file or folder", noVae.Message, StringComparison.Ordinal);

        // The embedded model samples 1 channel; the tiny VAE decodes 4-channel latents.
        string vae = Path.Combine(TestFiles.PipelineFolder(), "vae");
        var mismatch = Assert.Throws<ArgumentException>(() => DitPipeline.Load(null, new PipelineOptions { Vae = vae, Gemm = "managed" }));
        Assert.StartsWith($"PipelineOptions.Vae '{vae}' decodes 4-channel latents but embedded:fmnist-dit.safetensors samples 1 channels", mismatch.Message, StringComparison.Ordinal);

        foreach (Exception e in new Exception[] { notFound, threads, gemm, weights, half, noVae, mismatch })
        {
            Assert.DoesNotContain('\n', e.Message);
        }
    }

    [Fact]
    public void PngArgumentsOutOfRangeAreRefused()
    {
        SampledImages result = s_embedded.Value.Sample(new SamplingOptions { Classes = [0, 1], Steps = 1, Cfg = 1 });
        Assert.Contains("columns 0: a grid of 2 image(s) has 1..2 columns",
            Assert.Throws<ArgumentOutOfRangeException>(() => result.ToPng(columns: 0)).Message, StringComparison.Ordinal);
        Assert.Contains("columns 3: a grid of 2 image(s) has 1..2 columns",
            Assert.Throws<ArgumentOutOfRangeException>(() => result.ToPng(columns: 3)).Message, StringComparison.Ordinal);
        Assert.Contains("index 2: this run drew 2 image(s); give 0..1",
            Assert.Throws<ArgumentOutOfRangeException>(() => result.ImagePng(2)).Message, StringComparison.Ordinal);
    }
}
