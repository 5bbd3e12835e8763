//! The sample price file a new store starts with, so the demo and tests have goods to sell.

use crate::{Currency, Money, Product, ProductCode};

/// (GTIN-13 without its check digit, name, price in fen). A price of zero makes an open-price item (see
/// [`Product::is_open_price`]): the cashier types its price.
const SAMPLE: &[(&str, &str, i64)] = &[
    ("690123400001", "Whole milk 1 L", 1290),
    ("690123400002", "Eggs, 10 pack", 1580),
    ("690123400003", "Jasmine rice 5 kg", 4990),
    ("690123400004", "Soy sauce 500 ml", 890),
    ("690123400005", "Green tea 500 ml", 350),
    ("690123400006", "Instant noodles, 5 pack", 1250),
    ("690123400007", "Apples 1 kg", 1680),
    ("690123400008", "Bananas 1 kg", 990),
    ("690123400009", "Tofu 400 g", 450),
    ("690123400010", "Pork dumplings, frozen 1 kg", 3290),
    ("690123400011", "Peanut oil 1.8 L", 3990),
    ("690123400012", "Yogurt 4 x 100 g", 1190),
    ("690123400013", "White bread 400 g", 890),
    ("690123400014", "Mineral water 1.5 L", 250),
    ("690123400015", "Chocolate bar 100 g", 1590),
    ("690123400016", "Toilet paper, 10 rolls", 3490),
    ("690123400017", "Laundry detergent 2 kg", 4590),
    ("690123400018", "Toothpaste 120 g", 1290),
    ("690123400019", "Shampoo 400 ml", 3990),
    ("690123400020", "Chicken breast 500 g", 2290),
    ("690123400021", "Potato chips 70 g", 790),
    ("690123400022", "Coffee beans 250 g", 6800),
    ("690123400023", "Orange juice 1 L", 1490),
    ("690123400024", "Sunflower seeds 200 g", 990),
    ("400638133393", "Pocket notebook", 590),
    ("501234567890", "Imported olive oil 500 ml", 8990),
    // In-store code (prefix 2): goods of the counter, priced by hand.
    ("200000000001", "Bakery counter (open price)", 0),
];

/// The sample catalog: GTIN-13 codes with valid check digits, prices in CNY.
pub fn sample_catalog() -> Vec<Product> {
    SAMPLE
        .iter()
        .filter_map(|(body, name, fen)| {
            let gtin = ProductCode::from_body(body).ok()?;
            Some(Product { gtin, name: (*name).to_owned(), price: Money::new(*fen, Currency::CNY) })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_product_has_a_valid_distinct_gtin() {
        let catalog = sample_catalog();
        assert_eq!(catalog.len(), SAMPLE.len());
        let mut codes: Vec<_> = catalog.iter().map(|p| p.gtin.clone()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), SAMPLE.len());
        // One open-price item, priced at zero; every other product has a positive price.
        let open: Vec<_> = catalog.iter().filter(|p| p.is_open_price()).collect();
        assert_eq!(open.len(), 1);
        assert_eq!((open[0].gtin.as_str(), open[0].price.minor_units), ("2000000000015", 0));
        assert!(catalog.iter().filter(|p| !p.is_open_price()).all(|p| p.price.minor_units > 0));
    }
}
