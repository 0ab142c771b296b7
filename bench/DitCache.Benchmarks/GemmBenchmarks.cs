using System;
using BenchmarkDotNet.Attributes;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// SGEMM at the DiT Linear shapes (weights [n, k] so transB = true), the weight prepared once as the model does
/// (<see cref="IGemm.Prepare"/>): DiT-XL/2 at m = 512 tokens, attn.proj (512, 1152, 1152), qkv (512, 3456, 1152),
/// fc1 (512, 4608, 1152), fc2 (512, 1152, 4608); the shipped model at batch 100 with CFG, m = 200 × 49 = 9800 rows,
/// qkv (9800, 384, 128), attn.proj (9800, 128, 128), fc1 (9800, 512, 128), fc2 (9800, 128, 512).
/// GFLOP/s = 2·m·n·k / mean. On a shared machine prefer the interleaved <c>gemm</c> timing mode for ratios.
/// </summary>
[MemoryDiagnoser]
public class GemmBenchmarks
{
    private int _m;
    private int _n;
    private int _k;
    private float[] _a = [];
    private float[] _b = [];
    private float[] _c = [];
    private IGemm _gemm = null!;

    [Params("512x1152x1152", "512x3456x1152", "512x4608x1152", "512x1152x4608",
        "9800x384x128", "9800x128x128", "9800x512x128", "9800x128x512")]
    public string Shape { get; set; } = "512x1152x1152";

    [Params("managed", "managed-bf16", "openblas")]
    public string Backend { get; set; } = "managed";

    [Params(1, 2)]
    public int Threads { get; set; } = 1;

    [GlobalSetup]
    public void Setup()
    {
        string[] mnk = Shape.Split('x');
        (_m, _n, _k) = (int.Parse(mnk[0]), int.Parse(mnk[1]), int.Parse(mnk[2]));
        var rng = new Random(42);
        _a = new float[_m * _k];
        _b = new float[_n * _k];
        _c = new float[_m * _n];
        for (int i = 0; i < _a.Length; i++)
        {
            _a[i] = (float)(rng.NextDouble() - 0.5);
        }

        for (int i = 0; i < _b.Length; i++)
        {
            _b[i] = (float)(rng.NextDouble() - 0.5);
        }

        _gemm = GemmFactory.Create(Backend, Threads);
        _gemm.Prepare(_b, _n, _k);
    }

    [Benchmark]
    public void Sgemm() => _gemm.Multiply(_m, _n, _k, _a, _k, _b, _k, transB: true, _c, _n);
}
