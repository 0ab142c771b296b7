using System;

namespace DitCache.Benchmarks;

internal static class Program
{
    // "forward", "gemm", "precision", "alloc", "cachedstep", "vae", "inception", "attention", "scaling" and "serialparts" are plain timing/probe modes for a shared
    // machine (Timing/), "serve" is the C# half of tools/bench/side_by_side.py; anything else goes to BenchmarkDotNet.
    private static void Main(string[] args)
    {
        switch (args.Length > 0 ? args[0] : "")
        {
            case "forward":
                ForwardTiming.Run(args);
                break;
            case "gemm":
                GemmTiming.Run(args);
                break;
            case "precision":
                PrecisionProbe.Run(args);
                break;
            case "alloc":
                AllocationProbe.Run(args);
                break;
            case "cachedstep":
                CachedStepTiming.Run(args);
                break;
            case "vae":
                VaeTiming.Run(args);
                break;
            case "inception":
                InceptionTiming.Run(args);
                break;
            case "attention":
                AttentionTiming.Run(args);
                break;
            case "serialparts":
                SerialPartsTiming.Run(args);
                break;
            case "scaling":
                ScalingTiming.Run(args);
                break;
            case "serve":
                SideBySideServer.Run(args);
                break;
            default:
                BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
                break;
        }
    }
}
