namespace DitCache;

/// <summary>
/// Where a <see cref="DitPipeline.Sample"/> run is: <paramref name="Step"/> of <paramref name="Steps"/> sampling steps
/// are done (1 after the first step, <paramref name="Steps"/> after the last).
/// </summary>
/// <param name="Step">Sampling steps finished so far.</param>
/// <param name="Steps">Sampling steps of the run.</param>
public readonly record struct SamplingProgress(int Step, int Steps);
