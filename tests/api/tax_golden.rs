//! Golden tax cases: each computed by hand from the official table or formula (the arithmetic is
//! in the comments) and checked against the shipped `jurisdictions/*.toml` rules. Each case is
//! the mining income alone (no other income), as the statements assume.

use hashgate::jurisdiction::Jurisdictions;
use hashgate::tax::compute::{compute, Computation, EnergyUse};
use hashgate::tax::rules::Classification;
use rust_decimal::Decimal;

fn d(text: &str) -> Decimal {
    text.parse().unwrap()
}

fn tax(code: &str, year: i32, class: Classification, gross: &str, costs: &str) -> Computation {
    tax_with_energy(code, year, class, gross, costs, None)
}

fn tax_with_energy(
    code: &str,
    year: i32,
    class: Classification,
    gross: &str,
    costs: &str,
    energy: Option<EnergyUse>,
) -> Computation {
    let jurisdictions = Jurisdictions::load_default().unwrap();
    let rules = &jurisdictions.get(code).unwrap().tax;
    let schedule = &rules.year(year).unwrap().schedules[&class];
    compute(schedule, d(gross), d(costs), energy)
}

fn surtax(computation: &Computation, name: &str) -> Decimal {
    computation
        .surtaxes
        .iter()
        .find(|line| line.name.en.starts_with(name))
        .unwrap_or_else(|| panic!("no surtax {name}: {computation:#?}"))
        .amount
}

use Classification::{Business, Miscellaneous};

#[test]
fn gb() {
    // 2026/27, miscellaneous: costs £500 < the £1,000 allowance, so £1,000 comes off.
    // 30,000 − 1,000 = 29,000; − PA 12,570 = 16,430 × 20% = 3,286.00.
    let c = tax("GB", 2026, Miscellaneous, "30000", "500");
    assert_eq!(c.costs.amount, d("1000"));
    assert_eq!(c.taxable_income, d("16430"));
    assert_eq!(c.total_tax, d("3286.00"));

    // PA taper: net 129,000 → PA 12,570 − (129,000 − 100,000) / 2 = 12,570 − 14,500 → 0.
    // 37,700 × 20% = 7,540; (125,140 − 37,700) = 87,440 × 40% = 34,976;
    // (129,000 − 125,140) = 3,860 × 45% = 1,737. Total 44,253.
    let c = tax("GB", 2026, Miscellaneous, "130000", "0");
    assert_eq!(c.allowances[0].amount, d("0"));
    assert_eq!(c.total_tax, d("44253"));

    // Trading: net 40,000 − 2,000 = 38,000; taxable 25,430 × 20% = 5,086;
    // Class 4: (38,000 − 12,570) × 6% = 1,525.80. Total 6,611.80.
    let c = tax("GB", 2026, Business, "40000", "2000");
    assert_eq!(c.income_tax, d("5086"));
    assert_eq!(surtax(&c, "Class 4"), d("1525.80"));
    assert_eq!(c.total_tax, d("6611.80"));

    // £900 of income is covered by the £1,000 allowance: nothing to pay.
    let c = tax("GB", 2025, Miscellaneous, "900", "0");
    assert_eq!((c.net_income, c.total_tax), (d("0"), d("0")));
}

#[test]
fn de() {
    // §22 Nr. 3 Freigrenze: €255.99 is below €256, so not taxed at all; €256 is taxable.
    let c = tax("DE", 2026, Miscellaneous, "255.99", "0");
    assert!(c.exempt_reason.is_some());
    assert!(tax("DE", 2026, Miscellaneous, "256", "0")
        .exempt_reason
        .is_none());

    // 2026: 50,000 − 1,000.40 = 48,999.60 → zvE 48,999 (down to the euro).
    // z = (48,999 − 17,799) / 10,000 = 3.12; (173.10 × 3.12 + 2,397) × 3.12 + 1,034.87
    // = 2,937.072 × 3.12 + 1,034.87 = 10,198.53 → 10,198 (down). Tax ≤ 20,350: no Soli.
    let c = tax("DE", 2026, Miscellaneous, "50000", "1000.40");
    assert_eq!(c.taxable_income, d("48999"));
    assert_eq!(c.income_tax, d("10198"));
    assert_eq!(c.total_tax, d("10198"));

    // 2026: zvE 100,000 → 0.42 × 100,000 − 11,135.63 = 30,864.37 → 30,864.
    // Soli: 5.5% × 30,864 = 1,697.52, but at most 11.9% × (30,864 − 20,350) = 1,251.166
    // → 1,251.16 (down to the cent). Total 32,115.16.
    let c = tax("DE", 2026, Business, "100000", "0");
    assert_eq!(c.income_tax, d("30864"));
    assert_eq!(surtax(&c, "Solidarity"), d("1251.16"));
    assert_eq!(c.total_tax, d("32115.16"));

    // 2025: zvE 15,000; y = (15,000 − 12,096) / 10,000 = 0.2904;
    // (932.30 × 0.2904 + 1,400) × 0.2904 = 485.18 → 485.
    assert_eq!(
        tax("DE", 2025, Miscellaneous, "15000", "0").total_tax,
        d("485")
    );

    // Top zone 2026: 0.45 × 300,000 − 19,470.38 = 115,529.62 → 115,529;
    // Soli 5.5% × 115,529 = 6,354.095 (below the phase-in cap) → 6,354.09.
    let c = tax("DE", 2026, Miscellaneous, "300000", "0");
    assert_eq!(c.income_tax, d("115529"));
    assert_eq!(surtax(&c, "Solidarity"), d("6354.09"));
}

#[test]
fn de_formula_zones_join() {
    // The §32a zones meet at their borders (the data has no typo): tax just below and at each
    // border differs by less than the marginal rate.
    for (year, borders) in [
        (2025, ["12097", "17444", "68481", "277826"]),
        (2026, ["12349", "17800", "69879", "277826"]),
    ] {
        for border in borders {
            let at = tax("DE", year, Business, border, "0").income_tax;
            let below =
                tax("DE", year, Business, &(d(border) - d("1")).to_string(), "0").income_tax;
            assert!(at - below <= d("1"), "{year} {border}: {below} → {at}");
        }
    }
}

#[test]
fn us() {
    // 2026 hobby: costs are not deductible. 60,000 − 16,100 = 43,900;
    // 12,400 × 10% = 1,240 + 31,500 × 12% = 3,780 → 5,020.00.
    let c = tax("US", 2026, Miscellaneous, "60000", "3000");
    assert_eq!(c.costs.amount, d("0"));
    assert_eq!(c.total_tax, d("5020.00"));

    // 2026 business: net 57,000; SE earnings 57,000 × 0.9235 = 52,639.50;
    // SE tax 52,639.50 × 15.3% = 8,053.8435 → 8,053.84; half (4,026.92) comes off:
    // 57,000 − 4,026.92 − 16,100 = 36,873.08; 1,240 + 24,473.08 × 12% = 4,176.7696 → 4,176.77.
    // Total 4,176.77 + 8,053.84 = 12,230.61.
    let c = tax("US", 2026, Business, "60000", "3000");
    assert_eq!(surtax(&c, "Self-employment"), d("8053.84"));
    assert_eq!(c.above_the_line[0].amount, d("4026.92"));
    assert_eq!(c.taxable_income, d("36873.08"));
    assert_eq!(c.income_tax, d("4176.77"));
    assert_eq!(c.total_tax, d("12230.61"));

    // Net earnings below $400: 430 × 0.9235 = 397.11 → no SE tax.
    assert_eq!(
        surtax(&tax("US", 2025, Business, "430", "0"), "Self-employment"),
        d("0")
    );

    // Above the 2025 wage base: 250,000 × 0.9235 = 230,875;
    // 176,100 × 12.4% = 21,836.40 + 230,875 × 2.9% = 6,695.375 + (230,875 − 200,000) × 0.9%
    // = 277.875 → 28,809.65.
    assert_eq!(
        surtax(&tax("US", 2025, Business, "250000", "0"), "Self-employment"),
        d("28809.65")
    );
}

#[test]
fn cn() {
    // 经营所得 2026: 200,000 − 10,000 − 60,000 = 130,000;
    // 30,000 × 5% + 60,000 × 10% + 40,000 × 20% = 1,500 + 6,000 + 8,000 = 15,500
    // (quick deduction: 130,000 × 20% − 10,500 = 15,500).
    let c = tax("CN", 2026, Business, "200000", "10000");
    assert_eq!(c.taxable_income, d("130000"));
    assert_eq!(c.total_tax, d("15500"));
    // 偶然所得: 20% of the whole, no deductions: 100,000 × 20% = 20,000.
    assert_eq!(
        tax("CN", 2026, Miscellaneous, "100000", "5000").total_tax,
        d("20000")
    );
    // Top band: 700,000 − 60,000 = 640,000 × 35% − 65,500 = 158,500.
    assert_eq!(
        tax("CN", 2025, Business, "700000", "0").total_tax,
        d("158500")
    );
}

#[test]
fn hk() {
    // Two-tier profits tax: 2,400,000 → 2,000,000 × 7.5% + 400,000 × 15% = 150,000 + 60,000.
    let c = tax("HK", 2026, Business, "2500000", "100000");
    assert_eq!(c.total_tax, d("210000"));
    // Private income is not taxed.
    let c = tax("HK", 2026, Miscellaneous, "2500000", "0");
    assert_eq!(c.total_tax, d("0"));
    assert!(c.exempt_reason.is_some());
}

#[test]
fn sg() {
    // 100,000: first 20,000 at 0; 10,000 × 2% = 200; 10,000 × 3.5% = 350; 40,000 × 7% = 2,800
    // (3,350 on the first 80,000, as IRAS tabulates); 20,000 × 11.5% = 2,300 → 5,650.
    assert_eq!(
        tax("SG", 2026, Business, "100000", "0").total_tax,
        d("5650")
    );
    // Above S$1,000,000: 1,200,000 → IRAS table: 199,150 on the first 1,000,000;
    // 200,000 × 24% = 48,000 → 247,150.
    assert_eq!(
        tax("SG", 2025, Business, "1200000", "0").total_tax,
        d("247150")
    );
    assert_eq!(
        tax("SG", 2026, Miscellaneous, "100000", "0").total_tax,
        d("0")
    );
}

#[test]
fn ch() {
    // DBG Art. 36 2025: 80,050 → 80,000 (down to CHF 100); row 76,100: 1,149.55 + 3,900 ×
    // 5.94% = 1,149.55 + 231.66 = 1,381.21 (the printed base amounts, not the sum of rates).
    let c = tax("CH", 2025, Miscellaneous, "80050", "0");
    assert_eq!(c.taxable_income, d("80000"));
    assert_eq!(c.total_tax, d("1381.21"));
    // 16,000: 800 × 0.77% = 6.16, below CHF 25: not levied.
    assert_eq!(
        tax("CH", 2025, Miscellaneous, "16000", "0").total_tax,
        d("0")
    );
    // 1,000,000: the table gives 10,920.40 + 815,100 × 13.2% = 118,513.60, capped at 11.5% of
    // the whole income = 115,000.
    assert_eq!(
        tax("CH", 2025, Business, "1000000", "0").total_tax,
        d("115000")
    );
    // The table's own fixed point: 793,300 → 91,229.20.
    assert_eq!(
        tax("CH", 2025, Business, "793300", "0").total_tax,
        d("91229.20")
    );
}

#[test]
fn kz() {
    // 2025: flat 10%: 1,000,000 → 100,000.
    assert_eq!(
        tax("KZ", 2025, Miscellaneous, "1000000", "0").total_tax,
        d("100000")
    );
    // 2026: 36,762,500 (8,500 MCI × 4,325) × 10% = 3,676,250; 3,237,500 × 15% = 485,625
    // → 4,161,875.
    assert_eq!(
        tax("KZ", 2026, Miscellaneous, "40000000", "0").total_tax,
        d("4161875")
    );
    // The mining fee on 1,000 kWh at ₸20/kWh (below ₸24): 25 × 1,000 = 25,000, paid by the
    // facility: shown, not added.
    let energy = EnergyUse {
        kwh: d("1000"),
        average_price: d("20"),
    };
    let c = tax_with_energy("KZ", 2026, Miscellaneous, "1000000", "0", Some(energy));
    let fee = c.surtaxes.iter().find(|line| line.informational).unwrap();
    assert_eq!(fee.amount, d("25000"));
    assert_eq!(c.total_tax, d("100000"));
}

#[test]
fn jp() {
    // 2026: 5,000,000 − 400,000 = 4,600,000; basic deduction for income ≤ 4,890,000: 680,000;
    // taxable 3,920,000. National: 3,920,000 × 20% − 427,500 = 356,500.
    // Reconstruction 2.1%: 7,486.5 → 7,486; together 363,986 → 363,900 (down to ¥100).
    // Inhabitant: (4,600,000 − 430,000) × 10% = 417,000. Total 356,500 + 7,486 − 86 + 417,000
    // = 780,900.
    let c = tax("JP", 2026, Miscellaneous, "5000000", "400000");
    assert_eq!(c.allowances[0].amount, d("680000"));
    assert_eq!(c.taxable_income, d("3920000"));
    assert_eq!(c.income_tax, d("356500"));
    assert_eq!(surtax(&c, "Special income tax"), d("7486"));
    assert_eq!(c.rounding_adjustment, d("-86"));
    assert_eq!(surtax(&c, "Inhabitant"), d("417000"));
    assert_eq!(c.total_tax, d("780900"));

    // ¥1,000,000 of income: deduction 950,000; taxable 50,000 × 5% = 2,500; + 52 (2.1%,
    // 52.5 down) = 2,552 → 2,500. Inhabitant: 570,000 × 10% = 57,000. Total 59,500.
    let c = tax("JP", 2025, Business, "1000000", "0");
    assert_eq!(c.total_tax, d("59500"));
}

#[test]
fn au() {
    // 2026–27: 80,000 − 2,000 = 78,000; 26,800 × 15% = 4,020 + 33,000 × 30% = 9,900 → 13,920;
    // Medicare 2% × 78,000 = 1,560. Total 15,480.
    let c = tax("AU", 2026, Business, "80000", "2000");
    assert_eq!(c.income_tax, d("13920"));
    assert_eq!(c.total_tax, d("15480"));
    // 2025–26 at 16%: 26,800 × 16% = 4,288 + 35,000 × 30% = 10,500 + Medicare 1,600 = 16,388.
    assert_eq!(
        tax("AU", 2025, Business, "80000", "0").total_tax,
        d("16388")
    );
    // Medicare shade-in: 30,000 → min(600, (30,000 − 27,222) × 10% = 277.80);
    // tax 11,800 × 15% = 1,770. Total 2,047.80.
    let c = tax("AU", 2026, Business, "30000", "0");
    assert_eq!(surtax(&c, "Medicare"), d("277.80"));
    assert_eq!(c.total_tax, d("2047.80"));
    assert_eq!(
        tax("AU", 2026, Miscellaneous, "30000", "0").total_tax,
        d("0")
    );
}

#[test]
fn ca() {
    // 2026: 58,523 × 14% = 8,193.22 + 11,477 × 20.5% = 2,352.785 → 10,546.005 → 10,546.01;
    // basic personal amount credit 16,452 × 14% = 2,303.28. Tax 8,242.73.
    let c = tax("CA", 2026, Business, "70000", "0");
    assert_eq!(c.income_tax_before_credits, d("10546.01"));
    assert_eq!(c.credits[0].amount, d("2303.28"));
    assert_eq!(c.total_tax, d("8242.73"));
    // Above $258,482 the amount is the minimum, 14,829 × 14% = 2,076.06.
    let c = tax("CA", 2026, Business, "300000", "0");
    assert_eq!(c.credits[0].amount, d("2076.06"));
    // Halfway through the taper (2025: 177,882 → 253,414; midpoint 215,648): the amount is
    // halfway between 16,129 and 14,538 = 15,333.50 × 14.5% = 2,223.3575 → 2,223.36.
    let c = tax("CA", 2025, Business, "215648", "0");
    assert_eq!(c.credits[0].amount, d("2223.36"));
}
