using System;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DitCache.Caching.Calibration;

/// <summary>
/// One method's section of the calibration file. The record that implements it lives in the method's policy file
/// with its validation and its knob search, and is registered in <see cref="CacheRegistry"/>; the file itself knows
/// no method. Its public properties are the JSON layout (snake_case), so members that are not data are methods or
/// explicit implementations.
/// </summary>
public interface ICalibrationSection
{
    /// <summary>The section name in the JSON and in <c>ditcache calibrate</c>, e.g. <c>teacache</c>.</summary>
    string Method { get; }

    /// <summary>How the section was measured.</summary>
    CalibrationRun Run { get; }

    /// <summary>The knob chosen by <c>--target-speedup</c>, or null.</summary>
    TunedSetting? Tuned { get; }

    /// <summary>A copy of this section with <paramref name="tuned"/> recorded.</summary>
    ICalibrationSection WithTuned(TunedSetting tuned);

    /// <summary>
    /// Checks the lengths and values a policy relies on, through <paramref name="check"/>, which throws naming the
    /// key and the recalibrate command. The run fields were checked before.
    /// </summary>
    void Check(CalibrationCheck check);

    /// <summary>
    /// Searches the method's knob for the FLOPs ratio closest to <see cref="IKnobSearch.Target"/>, measuring through
    /// <paramref name="search"/>, and returns the choice (<see cref="IKnobSearch.Choose"/>).
    /// </summary>
    TunedSetting Tune(IKnobSearch search);

    /// <summary>A line for <c>ditcache calibrate</c> to print about the section, or null.</summary>
    string? Describe() => null;
}

/// <summary>A section type with its name and how it is made from a calibration run's measurements.</summary>
/// <typeparam name="TSelf">The implementing record.</typeparam>
public interface ICalibrationSection<TSelf> : ICalibrationSection
    where TSelf : class, ICalibrationSection<TSelf>
{
    /// <summary>The section name (<see cref="ICalibrationSection.Method"/>).</summary>
    static abstract string Name { get; }

    /// <summary>The section computed from what one full-compute run recorded.</summary>
    static abstract TSelf Measure(CalibrationMeasurements measured);

    /// <summary>
    /// Why a calibration run of <paramref name="steps"/> steps and SmoothCache lookahead <paramref name="lookahead"/>
    /// cannot make this section (a sentence naming the flag and the value that works), or null when it can; checked
    /// before the run starts.
    /// </summary>
    static virtual string? Unsupported(int steps, int lookahead) => null;
}

/// <summary>
/// A calibrated method as the registry lists it: its section name, how its JSON section is read, and how a
/// calibration run makes it (<see cref="CalibratedMethod.Of{T}"/>).
/// </summary>
public sealed class CalibratedMethod
{
    private readonly Func<JsonNode, JsonSerializerOptions, ICalibrationSection?> _deserialize;
    private readonly Func<CalibrationMeasurements, ICalibrationSection> _measure;
    private readonly Func<int, int, string?> _unsupported;

    private CalibratedMethod(string name, Func<JsonNode, JsonSerializerOptions, ICalibrationSection?> deserialize,
        Func<CalibrationMeasurements, ICalibrationSection> measure, Func<int, int, string?> unsupported)
    {
        Name = name;
        _deserialize = deserialize;
        _measure = measure;
        _unsupported = unsupported;
    }

    /// <summary>The section name, e.g. <c>teacache</c>.</summary>
    public string Name { get; }

    /// <summary>The registry entry of section type <typeparamref name="T"/>.</summary>
    public static CalibratedMethod Of<T>()
        where T : class, ICalibrationSection<T> =>
        new(T.Name, (node, options) => node.Deserialize<T>(options), m => T.Measure(m), (steps, lookahead) => T.Unsupported(steps, lookahead));

    /// <summary>The section made from a calibration run's measurements.</summary>
    public ICalibrationSection Measure(CalibrationMeasurements measured) => _measure(measured);

    /// <summary>Why a run of these settings cannot make the section, or null (<see cref="ICalibrationSection{TSelf}.Unsupported"/>).</summary>
    public string? Unsupported(int steps, int lookahead) => _unsupported(steps, lookahead);

    internal ICalibrationSection? Deserialize(JsonNode node, JsonSerializerOptions options) => _deserialize(node, options);
}

/// <summary>
/// What one full-compute calibration run records (<see cref="CalibrationRecorder"/> plus the sampling loop's guided
/// ε), from which each calibrated method makes its section.
/// </summary>
/// <param name="Run">The run, recorded in every section.</param>
/// <param name="Lookahead">SmoothCache's lookahead L.</param>
/// <param name="RelIn">TeaCache: rel L1 change of block 0's modulated input, n = 1 … S−1 (index n−1).</param>
/// <param name="RelOut">TeaCache: rel L1 change of the guided ε, n = 1 … S−1 (index n−1).</param>
/// <param name="Gamma">MagCache: γ_n, n = 0 … S−1.</param>
/// <param name="AttnRows">SmoothCache: attention error rows [r−1][i], lengths S − r.</param>
/// <param name="MlpRows">SmoothCache: MLP error rows [r−1][i], lengths S − r.</param>
public sealed record CalibrationMeasurements(CalibrationRun Run, int Lookahead, double[] RelIn, double[] RelOut, double[] Gamma,
    double[][] AttnRows, double[][] MlpRows);

/// <summary>The validation of one section: failures name the file, the key and the command that rewrites it.</summary>
public sealed class CalibrationCheck
{
    private readonly CalibrationFile _file;

    internal CalibrationCheck(CalibrationFile file, string method)
    {
        _file = file;
        Method = method;
    }

    /// <summary>The section checked.</summary>
    public string Method { get; }

    /// <summary>Throws when <paramref name="ok"/> is false: '<c>method.key</c>' <paramref name="problem"/>.</summary>
    /// <exception cref="Tensors.DitCacheException">The check failed (exit code 1).</exception>
    public void Require(bool ok, string key, string problem) => _file.Require(ok, Method + "." + key, problem, Method);
}
