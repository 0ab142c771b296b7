using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using DitCache.Sampling;
using DitCache.Tensors;
using DitCache.Tensors.IO;

namespace DitCache.Peers;

/// <summary>
/// <c>serve ENGINE THREADS</c> (ENGINE: ort or torchsharp): the peers' half of tools/bench/side_by_side.py --peers,
/// speaking the one-line protocol of <c>bench/DitCache.Benchmarks serve</c>, so the script drives a peer like a
/// DitCache server. MODEL is an export of tools/bench/export_peers.py (ONNX for ort, TorchScript for torchsharp) with
/// its JSON beside it. Commands, one per line, each answered with one line:
/// <list type="bullet">
/// <item><c>forward-load MODEL INPUTS</c>: the model and the inputs x (B, C, H, W), t (B), y (B, as floats) of the
/// safetensors file INPUTS → <c>ok ENGINE B</c>.</item>
/// <item><c>forward K [OUT]</c>: K forwards → <c>ms M1 … MK</c>; with OUT, the last output is written there as
/// safetensors tensor "out".</item>
/// <item><c>sample MODEL NOISE CLASSES STEPS CFG none [OUT]</c>: STEPS of DDIM (η = 0) with CFG on all channels
/// from the tensor "noise" of NOISE, the loop written here around the peer's forward with DitCache's arithmetic
/// (src/DitCache.Sampling: <see cref="GaussianDiffusion"/> tables, <c>Ddim.Step</c>, <c>DitModel.ForwardWithCfg</c>) →
/// <c>sample SECONDS NaN NaN STEP_MS NaN</c> (the loop's seconds, the median step); with OUT, the final sample is
/// written there as tensor "sample".</item>
/// <item><c>quit</c>.</item>
/// </list>
/// Errors answer <c>error MESSAGE</c> and the process keeps serving. Bad command-line arguments: one line on stderr,
/// exit code 2.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length != 3 || args[0] != "serve" || args[1] is not ("ort" or "torchsharp")
            || !int.TryParse(args[2], NumberStyles.None, CultureInfo.InvariantCulture, out int threads) || threads < 1)
        {
            Console.Error.WriteLine($"DitCache.Peers: expected 'serve ENGINE THREADS' with ENGINE ort or torchsharp and THREADS >= 1, got '{string.Join(' ', args)}'");
            return 2;
        }

        string engine = args[1];
        Func<string, IPeerModel> open;
        string describe;
        if (engine == "ort")
        {
            open = path => new OrtPeer(path, threads);
            describe = OrtPeer.Describe(threads);
        }
        else
        {
            TorchSharpPeer.SetThreads(threads);
            open = path => new TorchSharpPeer(path);
            describe = TorchSharpPeer.Describe(threads);
        }

        Serve(engine, threads, open, describe);
        return 0;
    }

    private static void Serve(string engine, int threads, Func<string, IPeerModel> open, string describe)
    {
        var models = new Dictionary<string, IPeerModel>(StringComparer.Ordinal);
        ForwardRun? forward = null;
        Console.WriteLine($"ready engine={engine} threads={threads} {describe}");

        IPeerModel Model(string path)
        {
            if (!File.Exists(path))
            {
                throw new InvalidOperationException($"model {path} not found (an export of tools/bench/export_peers.py)");
            }

            if (!models.TryGetValue(path, out IPeerModel? model))
            {
                model = open(path);
                models[path] = model;
            }

            return model;
        }

        try
        {
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
                            forward?.Dispose();
                            forward = null;
                            forward = new ForwardRun(Model(a[1]), Checkpoint.Load(a[2]));
                            Console.WriteLine($"ok {engine} {forward.Shape.Batch}");
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
#pragma warning disable CA1031 // a server answers every failure as one 'error' line and keeps serving; the client fails loudly on it
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Console.WriteLine("error " + e.GetType().Name + ": " + e.Message.Replace('\n', ' '));
                }
            }
        }
        finally
        {
            forward?.Dispose();
            foreach (IPeerModel m in models.Values)
            {
                m.Dispose();
            }
        }
    }

    private static string Sample(IPeerModel model, string[] a)
    {
        if (a.Length < 7)
        {
            throw new ArgumentException("sample expects MODEL NOISE CLASSES STEPS CFG CACHE [OUT]");
        }

        Tensor noise = Checkpoint.Load(a[2]).Tensors["noise"];
        int[] classes = a[3].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int steps = int.Parse(a[4], CultureInfo.InvariantCulture);
        float cfg = float.Parse(a[5], CultureInfo.InvariantCulture);
        if (a[6] != "none")
        {
            throw new ArgumentException($"cache '{a[6]}': the peers run uncached only (none)");
        }

        var run = new PeerSampler(model, classes, steps, cfg, noise);
        (double seconds, double stepMs) = run.Run();
        if (a.Length > 7)
        {
            SafeTensors.Save(a[7], new Dictionary<string, Tensor> { ["sample"] = run.Sample() });
        }

        return string.Create(CultureInfo.InvariantCulture, $"sample {seconds:R} NaN NaN {stepMs:R} NaN");
    }

    /// <summary>A plain forward of fixed inputs, buffers bound once.</summary>
    private sealed class ForwardRun : IDisposable
    {
        private readonly float[] _out;
        private readonly IPeerRun _run;

        public ForwardRun(IPeerModel model, TensorFile inputs)
        {
            Shape = model.Shape;
            float[] x = inputs.Tensors["x"].Data, t = inputs.Tensors["t"].Data;
            long[] y = inputs.Tensors["y"].Data.Select(v => (long)v).ToArray();
            if (t.Length != Shape.Batch || x.Length != Shape.Batch * Shape.Image || y.Length != Shape.Batch)
            {
                throw new ArgumentException(
                    $"inputs x {inputs.Tensors["x"].ShapeText}, t {t.Length}, y {y.Length} do not fit the export (batch {Shape.Batch}, {Shape.InChannels}x{Shape.InputSize}x{Shape.InputSize}): re-export at this batch");
            }

            _out = new float[Shape.Batch * Shape.OutImage];
            _run = model.Bind(x, t, y, _out);
        }

        public PeerShape Shape { get; }

        public double[] Time(int count, string? outPath)
        {
            var ms = new double[count];
            var clock = new Stopwatch();
            for (int i = 0; i < count; i++)
            {
                clock.Restart();
                _run.Run();
                ms[i] = clock.Elapsed.TotalMilliseconds;
            }

            if (outPath is not null)
            {
                var output = new Tensor((float[])_out.Clone(), Shape.Batch, Shape.OutChannels, Shape.InputSize, Shape.InputSize);
                SafeTensors.Save(outPath, new Dictionary<string, Tensor> { ["out"] = output });
            }

            return ms;
        }

        public void Dispose() => _run.Dispose();
    }
}
