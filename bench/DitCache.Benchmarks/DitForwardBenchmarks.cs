using System;
using BenchmarkDotNet.Attributes;
using DitCache.Caching;
using DitCache.Models;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// One DiT-S/2 forward at 256 tokens (latent 32x32, image 256), batch 2 (a CFG pair): 24.2 GFLOPs in the DiT-paper
/// convention. Random weights: the arithmetic does not depend on the values. PyTorch 1.13 on this machine takes
/// about 310 ms for the same forward (one torch thread, two BLAS threads).
/// </summary>
[MemoryDiagnoser]
public class DitForwardBenchmarks
{
    private DitModel _model = null!;
    private DitRunState _state = null!;
    private float[] _x = null!, _t = null!, _out = null!;
    private int[] _y = null!;

    [Params("managed", "openblas")]
    public string Gemm { get; set; } = "managed";

    [Params(2)]
    public int Threads { get; set; } = 2;

    [GlobalSetup]
    public void Setup()
    {
        DitConfig config = DitConfig.FromPreset("DiT-S/2", 256);
        _model = new DitModel(DitWeights.FromFile(DitWeights.RandomFile(config)), GemmFactory.Create(Gemm, Threads), Threads);
        _state = _model.CreateState(2);
        _x = new float[2 * config.InChannels * config.InputSize * config.InputSize];
        for (int i = 0; i < _x.Length; i++)
        {
            _x[i] = (float)Math.Sin(i * 0.37);
        }

        _t = [500f, 500f];
        _y = [3, config.NumClasses];
        _out = new float[2 * config.OutChannels * config.InputSize * config.InputSize];
    }

    [Benchmark]
    public void Forward() => _model.Forward(_x, _t, _y, _state, NoCache.Instance, _out);
}
