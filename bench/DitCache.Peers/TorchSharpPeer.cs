using System;
using TorchSharp;
using static TorchSharp.torch;

namespace DitCache.Peers;

/// <summary>
/// TorchSharp on libtorch (CPU): the TorchScript module traced and frozen by tools/bench/export_peers.py, run under
/// inference mode with torch.set_num_threads(THREADS) (intra-op, OpenMP) and one inter-op thread. The input and output
/// tensors are made once over the caller's arrays (torch.tensor(array, shape) pins the array and shares its memory;
/// <see cref="Bind"/> checks that it does); each run calls forward and copies the result into the output tensor.
/// </summary>
internal sealed class TorchSharpPeer : IPeerModel
{
    private readonly jit.ScriptModule _module;

    public TorchSharpPeer(string path)
    {
        Shape = PeerShape.Read(path);
        _module = jit.load(path);
        _module.eval();
    }

    public PeerShape Shape { get; }

    /// <summary>Sets libtorch's threads; once per process, before any tensor work (inter-op threads cannot change later).</summary>
    public static void SetThreads(int threads)
    {
        set_num_interop_threads(1);
        set_num_threads(threads);
    }

    public static string Describe(int threads) =>
        $"torchsharp {typeof(torch).Assembly.GetName().Version} libtorch cpu intra_op={get_num_threads()} (asked {threads}) inter_op={get_num_interop_threads()} inference_mode";

    public IPeerRun Bind(float[] x, float[] t, long[] y, float[] output)
    {
        PeerShape s = Shape;
        Tensor xs = tensor(x, [s.Batch, s.InChannels, s.InputSize, s.InputSize]);
        Tensor ts = tensor(t, [s.Batch]);
        Tensor ys = tensor(y, [s.Batch]);
        Tensor os = tensor(output, [s.Batch, s.OutChannels, s.InputSize, s.InputSize]);
        if (!Shares(xs, x) || !Shares(os, output))
        {
            throw new InvalidOperationException("torch.tensor(float[], shape) copied the array instead of sharing it: this TorchSharp needs another way to bind buffers");
        }

        return new Run(_module, xs, ts, ys, os);
    }

    public void Dispose() => _module.Dispose();

    private static bool Shares(Tensor tensor, float[] array)
    {
        float keep = array[^1];
        array[^1] = 12345.5f;
        bool shared = tensor.data<float>()[array.Length - 1] == 12345.5f;
        array[^1] = keep;
        return shared;
    }

    private sealed class Run(jit.ScriptModule module, Tensor xs, Tensor ts, Tensor ys, Tensor os) : IPeerRun
    {
        void IPeerRun.Run()
        {
            using IDisposable mode = inference_mode();
            using var result = (Tensor)module.call(xs, ts, ys);
            os.copy_(result);
        }

        public void Dispose()
        {
            xs.Dispose();
            ts.Dispose();
            ys.Dispose();
            os.Dispose();
        }
    }
}
