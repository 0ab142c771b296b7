using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using DitCache.Models;
using DitCache.Tensors;

namespace DitCache.Benchmarks;

/// <summary>
/// <c>vae [threads] [rounds] [latent side] [gemm] [out.bin]</c>: seconds to decode one image with the real sd-vae
/// shapes (block_out_channels [128, 256, 512, 512], layers_per_block 2, 32 groups) on hashed weights
/// (<see cref="VaeWeights.HashedFile"/>), latent (4, side, side) with <c>latent[i] = sin(0.37·i)</c>; side 32 gives a
/// 256x256 image. One warm-up decode, then the median and best of the rounds. With a fifth argument the image is
/// written there as raw float32, which tools/bench/time_vae_decode.py compares with PyTorch's decode of the same
/// weights and latent.
/// </summary>
internal static class VaeTiming
{
    public static void Run(string[] args)
    {
        int threads = args.Length > 1 ? int.Parse(args[1]) : 1;
        int rounds = args.Length > 2 ? int.Parse(args[2]) : 3;
        int side = args.Length > 3 ? int.Parse(args[3]) : 32;
        string gemm = args.Length > 4 ? args[4] : "managed";

        VaeConfig config = VaeConfig.SdVae;
        var decoder = new VaeDecoder(VaeWeights.FromFile(VaeWeights.HashedFile(config), config), GemmFactory.Create(gemm, threads));
        var latent = Tensor.Zeros(1, config.LatentChannels, side, side);
        for (int i = 0; i < latent.Length; i++)
        {
            latent.Data[i] = MathF.Sin(0.37f * i);
        }

        Tensor image = decoder.Decode(latent);                                                      // warm-up: JIT, buffers
        var seconds = new double[rounds];
        var cpu = new double[rounds];
        using var process = Process.GetCurrentProcess();
        for (int r = 0; r < rounds; r++)
        {
            process.Refresh();
            TimeSpan cpu0 = process.TotalProcessorTime;
            long start = Stopwatch.GetTimestamp();
            image = decoder.Decode(latent);
            seconds[r] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            process.Refresh();
            cpu[r] = (process.TotalProcessorTime - cpu0).TotalSeconds;
        }

        // CPU seconds (all threads) next to the wall clock: on a shared machine the wall clock also counts the time
        // other processes held the cores.
        double[] sorted = seconds.Order().ToArray(), sortedCpu = cpu.Order().ToArray();
        Console.WriteLine($"RESULT vae-decode {side * config.UpsampleFactor}x{side * config.UpsampleFactor} {gemm} t{threads} " +
            $"wall median {sorted[rounds / 2]:F3} s best {sorted[0]:F3} s; cpu median {sortedCpu[rounds / 2]:F3} s best {sortedCpu[0]:F3} s; " +
            $"workspace {VaeDecoder.WorkspaceBytes(config, side, side, threads) / 1e6:F0} MB");
        if (args.Length > 5)
        {
            File.WriteAllBytes(args[5], MemoryMarshal.AsBytes<float>(image.Data).ToArray());
        }
    }
}
