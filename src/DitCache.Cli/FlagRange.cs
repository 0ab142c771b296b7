using System;
using System.CommandLine;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace DitCache.Cli;

/// <summary>
/// The documented range of every numeric flag, declared where the flag is made: the parser (<see cref="StrictNumbers"/>) refuses a value outside
/// it with one line naming the flag, the value and the range (exit 2), and <c>--help</c> and docs/cli.md show it. A
/// range that depends on the model (e.g. <c>--cfg-channels</c> up to its channels) is checked again once the model
/// is loaded; the note says so.
/// </summary>
internal static class FlagRange
{
    /// <summary>The most threads any command accepts (more than any machine we know of has cores).</summary>
    public const int MaxThreads = 1024;

    private static readonly ConditionalWeakTable<Option, Bounds> s_ranges = [];

    /// <summary>The range text of <paramref name="option"/>, e.g. <c>1 to 1000</c>, or null when it declares none.</summary>
    public static string? Of(Option option) => s_ranges.TryGetValue(option, out Bounds? b) ? b.Text : null;

    /// <summary><paramref name="option"/> accepts <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static Option<int> Range(this Option<int> option, int min, int max, string note = "")
    {
        Declare(option, min, max, note);
        return option;
    }

    /// <summary><paramref name="option"/>, when given, accepts <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static Option<int?> Range(this Option<int?> option, int min, int max, string note = "")
    {
        Declare(option, min, max, note);
        return option;
    }

    /// <summary><paramref name="option"/> accepts finite numbers of at least <paramref name="min"/>.</summary>
    public static Option<float> AtLeast(this Option<float> option, float min, string note = "")
    {
        Declare(option, min, double.PositiveInfinity, note);
        return option;
    }

    /// <summary><paramref name="option"/> accepts finite numbers of at least <paramref name="min"/>.</summary>
    public static Option<double> AtLeast(this Option<double> option, double min, string note = "")
    {
        Declare(option, min, double.PositiveInfinity, note);
        return option;
    }

    /// <summary><paramref name="option"/>, when given, accepts finite numbers of at least <paramref name="min"/>.</summary>
    public static Option<double?> AtLeast(this Option<double?> option, double min, string note = "")
    {
        Declare(option, min, double.PositiveInfinity, note);
        return option;
    }

    private static void Declare(Option option, double min, double max, string note)
    {
        var range = new Bounds(min, max, note);
        s_ranges.AddOrUpdate(option, range);
        option.Description = $"{option.Description} [{range.Text}]";
    }

    /// <summary>
    /// The error for <paramref name="value"/> of flag <paramref name="name"/> outside <paramref name="option"/>'s
    /// range, or null when it is inside (or the flag declares none). NaN is outside every range.
    /// </summary>
    public static string? Violation(Option option, string name, double value) =>
        s_ranges.TryGetValue(option, out Bounds? b) && !(value >= b.Min && value <= b.Max)
            ? $"{name} {value.ToString(CultureInfo.InvariantCulture)} is out of range; give {b.Text}"
            : null;

    private sealed record Bounds(double Min, double Max, string Note)
    {
        public string Text => (double.IsPositiveInfinity(Max) ? FlagRange.Text(Min) : FlagRange.Text(Min, Max)) + Note;
    }

    private static string Text(double min, double max) =>
        string.Create(CultureInfo.InvariantCulture, $"{min} to {max}");

    private static string Text(double min) =>
        string.Create(CultureInfo.InvariantCulture, $"{min} or more");
}
