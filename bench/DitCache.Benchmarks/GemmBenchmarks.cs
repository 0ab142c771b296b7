using System;
using BenchmarkDotNet.Attributes;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// SGEMM at DiT-XL/2 Linear shapes (m = 512 tokens, weights [n, k] so transB = true): qkv/proj-sized
/// (512, 1152, 1152), fc1 (512, 4608, 1152), fc2 (512, 1152, 4608). GFLOP/s = 2·m·n·k / mean.
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

    [Params("512x1152x1152", "512x4608x1152", "512x1152x4608")]
    public string Shape { get; set; } = "512x1152x1152";

    [Params("managed", "openblas")]
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
    }

    [Benchmark]
    public void Sgemm() => _gemm.Multiply(_m, _n, _k, _a, _k, _b, _k, transB: true, _c, _n);
}
