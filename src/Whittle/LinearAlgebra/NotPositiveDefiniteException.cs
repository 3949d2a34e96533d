namespace Whittle.LinearAlgebra;

/// <summary>
/// Thrown when a Cholesky factorization meets a pivot that is not positive: the matrix is not (numerically)
/// symmetric positive definite. <see cref="PivotIndex"/> and <see cref="PivotValue"/> say where and by how much.
/// </summary>
public sealed class NotPositiveDefiniteException : ArithmeticException
{
    /// <summary>Creates the exception for a failing pivot.</summary>
    /// <param name="pivotIndex">Zero-based index of the first pivot that was not positive.</param>
    /// <param name="pivotValue">Its value (the diagonal of the Schur complement at that step; may be NaN).</param>
    /// <param name="jitter">The diagonal shift that was in effect (0 when none).</param>
    /// <param name="attempts">How many factorizations were tried.</param>
    public NotPositiveDefiniteException(int pivotIndex, double pivotValue, double jitter = 0, int attempts = 1)
        : base(BuildMessage(pivotIndex, pivotValue, jitter, attempts))
    {
        PivotIndex = pivotIndex;
        PivotValue = pivotValue;
        Jitter = jitter;
        Attempts = attempts;
    }

    /// <summary>Zero-based index of the first pivot that was not positive.</summary>
    public int PivotIndex { get; }

    /// <summary>The value of that pivot (≤ 0 or NaN).</summary>
    public double PivotValue { get; }

    /// <summary>The diagonal shift that was in effect in the last attempt (0 when none).</summary>
    public double Jitter { get; }

    /// <summary>How many factorizations were tried before giving up.</summary>
    public int Attempts { get; }

    private static string BuildMessage(int pivotIndex, double pivotValue, double jitter, int attempts)
    {
        string where = $"Cholesky: the matrix is not positive definite: pivot {pivotIndex} is {pivotValue:G6}, expected a value > 0.";
        if (jitter == 0)
            return where + " If the matrix is positive semi-definite (e.g. a rank-deficient Gram matrix), enable a diagonal shift " +
                   "with new CholeskyOptions(AllowJitter: true); otherwise check that it is symmetric and that its lower triangle holds the matrix.";
        return where + $" This was still the case after {attempts} attempts with a diagonal shift of up to {jitter:G6}; " +
               "raise CholeskyOptions.InitialJitter or MaxAttempts, or check that the matrix is symmetric positive semi-definite.";
    }
}
