//! A component that claims Kedastral's interface name but does not implement it.

#[cfg(target_arch = "wasm32")]
mod component {
    wit_bindgen::generate!({ world: "forecast-model", path: "wit" });

    struct WrongWorld;

    impl exports::kedastral::forecast::model::Guest for WrongWorld {
        fn describe() -> String {
            "not a forecast model".into()
        }
    }

    export!(WrongWorld);
}
