using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.Linq;
using DitCache.Caching;
using DitCache.Models;
using DitCache.Sampling;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>serve THREADS GEMM</c>: the C# half of tools/bench/side_by_side.py. One long-lived process that reads commands
/// from stdin, one per line, and answers each with one line on stdout, so the Python script can alternate DitCache and
/// PyTorch round by round while both stay warm (JIT tiers, buffers, weights loaded once); process start-up is never
/// timed. Commands:
/// <list type="bullet">
/// <item><c>forward-load WEIGHTS INPUTS</c>: a model from the safetensors file WEIGHTS and the inputs x (B, C, H, W),
/// t (B), y (B, as floats) from INPUTS → <c>ok CONFIG B</c>.</item>
/// <item><c>forward K [OUT]</c>: K forwards without cache → <c>ms M1 … MK</c> (per-forward milliseconds); with OUT,
/// the output of the last one is written there as safetensors tensor "out".</item>
/// <item><c>sample WEIGHTS NOISE CLASSES STEPS CFG CACHE [OUT]</c>: one DDIM (η = 0) run of
/// <see cref="DiffusionPipeline"/> from the tensor "noise" in NOISE, classes comma-separated, CFG on all channels →
/// <c>sample SECONDS FLOPS FULL_FLOPS FULL_STEP_MS CACHED_STEP_MS</c> (SECONDS: the sampling loop alone, as
/// <c>ditcache sample --report</c>; then the median milliseconds of a fully computed step and of a cached one, NaN
/// when there is none);
/// with OUT, the final sample is written there as tensor "sample".</item>
/// <item><c>quit</c>.</item>
/// </list>
/// Errors answer <c>error MESSAGE</c> and the process keeps serving.
/// </summary>
internal static class SideBySideServer
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : Environment.ProcessorCount;
        string gemmName = args.Length > 2 ? args[2] : "auto";
        IGemm gemm = GemmFactory.Create(gemmName, threads);
        var models = new Dictionary<string, DitModel>(StringComparer.Ordinal);
        ForwardRun? forward = null;
        Console.WriteLine($"ready gemm={gemm.Name} threads={threads} avx512={System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated}");

        DitModel Model(string path)
        {
            if (!models.TryGetValue(path, out DitModel? model))
            {
                model = new DitModel(DitWeights.FromFile(Checkpoint.Load(path)), gemm, threads);
                models[path] = model;
            }

            return model;
        }

        string? line;
        while ((line = Console.ReadLine()) is not null)
        {
            string[] a = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (a.Length == 0)
            {
                continue;
            }

            try
            {
                switch (a[0])
                {
                    case "forward-load":
                        forward = new ForwardRun(Model(a[1]), Checkpoint.Load(a[2]));
                        Console.WriteLine($"ok {forward.Model.Config.Name} {forward.State.Batch}");
                        break;
                    case "forward":
                        if (forward is null)
                        {
                            throw new InvalidOperationException("forward before forward-load");
                        }

                        Console.WriteLine("ms " + string.Join(' ', forward.Time(int.Parse(a[1], CultureInfo.InvariantCulture), a.Length > 2 ? a[2] : null)
                            .Select(ms => ms.ToString("R", CultureInfo.InvariantCulture))));
                        break;
                    case "sample":
                        Console.WriteLine(Sample(Model(a[1]), a));
                        break;
                    case "quit":
                        return;
                    default:
                        throw new InvalidOperationException($"unknown command '{a[0]}'");
                }
            }
            catch (Exception e) when (e is DitCacheException or ArgumentException or InvalidOperationException or FormatException or IndexOutOfRangeException)
            {
                Console.WriteLine("error " + e.Message.Replace('\n', ' '));
            }
        }
    }

    private static string Sample(DitModel model, string[] a)
    {
        Tensor noise = Checkpoint.Load(a[2]).Tensors["noise"];
        int[] classes = a[3].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int steps = int.Parse(a[4], CultureInfo.InvariantCulture);
        float cfg = float.Parse(a[5], CultureInfo.InvariantCulture);
        ICacheOptions cache = CacheRegistry.Parse(a[6]);
        var request = new SampleRequest(classes, steps, "ddim", cfg, GuidedChannels: null, Eta: 0.0, Seed: 0, Noise: noise);
        long[] stamps = new long[steps + 1];
        stamps[0] = Stopwatch.GetTimestamp();
        SampleResult result = new DiffusionPipeline(model).Run(request, cache, progress: (done, _) => stamps[done] = Stopwatch.GetTimestamp());
        if (a.Length > 7)
        {
            SafeTensors.Save(a[7], new Dictionary<string, Tensor> { ["sample"] = result.Sample });
        }

        // Median milliseconds of the fully computed steps and of the others (the first step is left out: it also
        // pays for touching the run's fresh buffers).
        double StepMs(bool computed) => Median(Enumerable.Range(1, steps - 1).Where(i => result.Steps[i].Computed == computed)
            .Select(i => Stopwatch.GetElapsedTime(stamps[i], stamps[i + 1]).TotalMilliseconds));
        return string.Create(CultureInfo.InvariantCulture,
            $"sample {result.Seconds:R} {result.Flops:R} {result.FullFlops:R} {StepMs(true):R} {StepMs(false):R}");
    }

    private static double Median(IEnumerable<double> values)
    {
        double[] v = values.Order().ToArray();
        return v.Length == 0 ? double.NaN : v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary>A plain forward (no CFG, no cache) of fixed inputs, buffers allocated once.</summary>
    private sealed class ForwardRun
    {
        private readonly float[] _x;
        private readonly float[] _t;
        private readonly int[] _y;
        private readonly float[] _out;

        public ForwardRun(DitModel model, TensorFile inputs)
        {
            Model = model;
            DitConfig c = model.Config;
            _x = inputs.Tensors["x"].Data;
            _t = inputs.Tensors["t"].Data;
            _y = inputs.Tensors["y"].Data.Select(v => (int)v).ToArray();
            State = model.CreateState(_t.Length);
            _out = new float[_t.Length * c.OutChannels * c.InputSize * c.InputSize];
        }

        public DitModel Model { get; }

        public DitRunState State { get; }

        public double[] Time(int count, string? outPath)
        {
            var ms = new double[count];
            var clock = new Stopwatch();
            for (int i = 0; i < count; i++)
            {
                clock.Restart();
                Model.Forward(_x, _t, _y, State, NoCache.Instance, _out);
                ms[i] = clock.Elapsed.TotalMilliseconds;
            }

            if (outPath is not null)
            {
                DitConfig c = Model.Config;
                var output = new Tensor((float[])_out.Clone(), _t.Length, c.OutChannels, c.InputSize, c.InputSize);
                SafeTensors.Save(outPath, new Dictionary<string, Tensor> { ["out"] = output });
            }

            return ms;
        }
    }
}
