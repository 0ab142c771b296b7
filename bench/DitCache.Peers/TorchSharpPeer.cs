using System;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace DitCache.Peers;

/// <summary>
/// TorchSharp on libtorch (CPU): the TorchScript module traced and frozen by tools/bench/export_peers.py, run under
/// inference mode with torch.set_num_threads(THREADS) (intra-op, OpenMP) and one inter-op thread. Each run copies the
/// caller's arrays into input tensors made once (one memcpy each through Tensor.bytes), calls forward and copies the
/// result out the same way: a few hundred kB at most, next to a forward's milliseconds.
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
        return new Run(_module, x, t, y, output,
            zeros([s.Batch, s.InChannels, s.InputSize, s.InputSize], ScalarType.Float32),
            zeros([s.Batch], ScalarType.Float32),
            zeros([s.Batch], ScalarType.Int64));
    }

    public void Dispose() => _module.Dispose();

    private sealed class Run(jit.ScriptModule module, float[] x, float[] t, long[] y, float[] output, Tensor xs, Tensor ts, Tensor ys) : IPeerRun
    {
        void IPeerRun.Run()
        {
            xs.bytes = MemoryMarshal.AsBytes(x.AsSpan());                 // memcpy into the tensors made once
            ts.bytes = MemoryMarshal.AsBytes(t.AsSpan());
            ys.bytes = MemoryMarshal.AsBytes(y.AsSpan());
            using IDisposable mode = inference_mode();
            using var result = (Tensor)module.call(xs, ts, ys);
            using Tensor dense = result.contiguous();
            MemoryMarshal.Cast<byte, float>(dense.bytes).CopyTo(output);
        }

        public void Dispose()
        {
            xs.Dispose();
            ts.Dispose();
            ys.Dispose();
        }
    }
}
