using System;

namespace DitCache.Caching;

/// <summary>
/// DuCa: Accelerating Diffusion Transformers with Dual Feature Caching (Zou et al., arXiv 2412.18911; official code
/// Shenyi-Z/DuCa <c>DuCa-DiT/</c>; docs/methods.md §5.3). ToCa's machinery with a third step type: inside each
/// force-activation cycle C the steps alternate between conservative ToCa steps (<c>i mod C</c> odd) and aggressive
/// steps (<c>i mod C</c> even, not 0) that skip every block and reuse the last block's output of the previous model
/// call; the final layer still runs with the current conditioning. The s4 bonus is 0.8 instead of 0.6.
/// Spec: <c>duca:n=3,ratio=0.05</c> (the README's DiT command).
/// </summary>
/// <param name="Threshold">N (knob <c>n</c>, official <c>fresh_threshold</c>, default 3 as the README): the base force-activation cycle.</param>
/// <param name="Ratio">Knob <c>ratio</c> (official <c>fresh_ratio</c>, default 0.05 as the README): the fresh-token ratio before the scheduler's factors.</param>
/// <param name="Schedule">Knob <c>sched</c>: <c>ddim50</c> (default; DuCa's scheduler named <c>ToCa</c> has the ToCa-ddim50 weights), <c>ddpm250</c> or <c>constant</c>.</param>
/// <param name="StaleWeight">λ3 (knob <c>w</c>, official <c>soft_fresh_weight</c>, default 0.25).</param>
/// <param name="Bonus">Knob <c>bonus</c> (default 0.8, hard-coded in DuCa's <c>cache_cutfresh.py</c>): the s4 bonus.</param>
/// <param name="Decision">Knob <c>schedule</c>: <c>block</c> (default, the official code decides in every block: block 0 of a full step may reset the cycle and leave blocks 1 … depth−1 a ToCa or an aggressive step) or <c>step</c> (once per step); see <see cref="TokenwiseSchedule"/>.</param>
/// <param name="Score">Knob <c>score</c>: <c>attention</c> (default), <c>random</c> or <c>kv-norm</c>, as ToCa's (<see cref="TokenScoreKind"/>).</param>
public sealed record DuCaOptions(int Threshold = 3, double Ratio = 0.05, TokenRatioSchedule Schedule = TokenRatioSchedule.Ddim50,
    double StaleWeight = 0.25, double Bonus = 0.8, TokenDecision Decision = TokenDecision.Block, TokenScoreKind Score = TokenScoreKind.Attention) : ICacheOptions
{
    /// <inheritdoc/>
    public string Name => "duca";

    /// <inheritdoc/>
    public string Spec => FormattableString.Invariant(
        $"duca:n={Threshold},ratio={Ratio},sched={ToCaOptions.ScheduleName(Schedule)},w={StaleWeight},bonus={Bonus},schedule={ToCaOptions.DecisionName(Decision)},score={ToCaOptions.ScoreName(Score)}");

    /// <summary>Parses <c>duca:n=N,ratio=r,sched=ddim50|ddpm250|constant,w=λ3,bonus=b,schedule=block|step,score=attention|random|kv-norm</c>; unknown knobs are errors.</summary>
    public static DuCaOptions FromSpec(CacheSpec spec)
    {
        var options = new DuCaOptions(spec.GetInt("n", 3), spec.GetDouble("ratio", 0.05),
            ToCaOptions.ParseSchedule(spec.GetChoice("sched", "ddim50", "ddim50", "ddpm250", "constant")),
            spec.GetDouble("w", 0.25), spec.GetDouble("bonus", 0.8), ToCaOptions.ParseDecision(spec), ToCaOptions.ParseScore(spec));
        spec.RejectUnknownKeys();
        return options;
    }

    /// <inheritdoc/>
    public void Validate() => TokenwiseChecks.Validate(Name, Threshold, Ratio, StaleWeight, Bonus);

    /// <summary>The step types (full, partial (ToCa) or aggressive) of block 0 and of blocks 1 … depth−1 for every sampling ordinal.</summary>
    /// <remarks>
    /// With <c>ratio=0</c> the cycle is fixed at N (the <c>fresh_ratio == 0</c> branch of the force scheduler DuCa
    /// shares with ToCa): the full steps are FORA's, the steps with <c>i mod N</c> odd reuse every module (no fresh
    /// token) and those with <c>i mod N</c> even are still aggressive.
    /// </remarks>
    public TokenwiseSchedule StepTypes(int steps) => TokenwiseSchedule.Create(steps, Threshold, aggressive: true, Decision, fixedCycle: Ratio == 0);

    /// <summary>Which sampling ordinals run every block (a mixed step, full in block 0 only, is not one).</summary>
    public bool[] FullSteps(int steps) => StepTypes(steps).FullSteps();

    /// <inheritdoc/>
    /// <remarks>The policy is a <see cref="ToCa"/> run on DuCa's schedule: the two papers share every other part.</remarks>
    public ICachePolicy Build(CacheRunInfo run)
    {
        Validate();
        run.Validate();
        return new ToCa(StepTypes(run.Steps), new TokenwiseSettings(Threshold, Ratio, Schedule, StaleWeight, Bonus, Score), run);
    }
}
