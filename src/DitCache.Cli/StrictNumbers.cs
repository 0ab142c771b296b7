using System;
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Linq;

namespace DitCache.Cli;

/// <summary>
/// Real-valued flags read as the invariant culture writes them: digits, one dot for decimals, an optional exponent.
/// The default float parser accepts group separators, so <c>--cfg 1,5</c> would silently mean 15; here it is an
/// error that names the flag and shows how to write the number. Applied to every float and double option of every
/// command in one place.
/// </summary>
internal static class StrictNumbers
{
    private const NumberStyles Style = NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent;

    /// <summary>Gives every float/double option of <paramref name="command"/> and its subcommands the strict parser.</summary>
    public static void Apply(Command command)
    {
        foreach (Option option in command.Options)
        {
            switch (option)
            {
                case Option<float> f:
                    f.CustomParser = r => (float)Parse(r, option.Name, float.MinValue, float.MaxValue);
                    break;
                case Option<float?> f:
                    f.CustomParser = r => r.Tokens.Count == 0 ? null : (float)Parse(r, option.Name, float.MinValue, float.MaxValue);
                    break;
                case Option<double> d:
                    d.CustomParser = r => Parse(r, option.Name, double.MinValue, double.MaxValue);
                    break;
                case Option<double?> d:
                    d.CustomParser = r => r.Tokens.Count == 0 ? null : Parse(r, option.Name, double.MinValue, double.MaxValue);
                    break;
            }
        }

        foreach (Command sub in command.Subcommands)
        {
            Apply(sub);
        }
    }

    private static double Parse(ArgumentResult result, string name, double min, double max)
    {
        string text = result.Tokens.Count == 1 ? result.Tokens[0].Value : string.Join(' ', result.Tokens.Select(t => t.Value));
        if (result.Tokens.Count != 1 || !double.TryParse(text, Style, CultureInfo.InvariantCulture, out double value))
        {
            result.AddError($"{name} '{text}' is not a number; write it like 1.5 or 1e-3 (a dot for decimals, no group separators)");
            return 0;
        }

        if (!double.IsFinite(value) || value < min || value > max)
        {
            result.AddError($"{name} {text} is not a finite {(max == float.MaxValue ? "float" : "double")}; give a number such as 1.5");
            return 0;
        }

        return value;
    }
}
